import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseJsonOutput, REPO_ROOT, runCli, type CliTarget } from '../helpers/processes';

// `dbchange lint` needs no Temporal and no database: a target whose address nobody listens on proves it.
const TARGET: CliTarget = { address: '127.0.0.1:1', taskQueue: 'lint-cli', configPath: join(REPO_ROOT, 'examples/dbchange.yaml') };
const UNSAFE = 'test/fixtures/lint/unsafe/20240101000008_post_deploy_rename_column.sql';
const SAFE = 'test/fixtures/lint/safe/20240201000005_foreign_key_not_valid.sql';

interface LintJson {
  version: number;
  kind: string;
  files: number;
  findings: { file: string; line: number; column: number; rule: string; message: string; fix: string; source: string }[];
}

describe('dbchange lint', () => {
  it('exits 1 and prints file:line:column, rule and fix for a post-deploy rename', async () => {
    const result = await runCli(TARGET, ['lint', '--kind', 'post-deploy', UNSAFE]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`${UNSAFE}:5:1: post-deploy-drop-or-rename (dbchange):`);
    expect(result.stdout).toContain('  fix: ');
  });

  it('prints one versioned JSON object with every finding', async () => {
    const result = await runCli(TARGET, ['lint', '--kind', 'post-deploy', UNSAFE, SAFE, '--json']);
    expect(result.code).toBe(1);
    const report = parseJsonOutput<LintJson>(result);
    expect(report).toMatchObject({ version: 1, kind: 'lint', files: 2 });
    expect(report.findings.filter((finding) => finding.source === 'dbchange')).toEqual([
      expect.objectContaining({ file: UNSAFE, line: 5, column: 1, rule: 'post-deploy-drop-or-rename' }),
    ]);
    expect(report.findings.every((finding) => finding.file === UNSAFE)).toBe(true);
  });

  it('exits 0 on a clean file, and 3 on an unknown kind or a badly named file', async () => {
    expect((await runCli(TARGET, ['lint', SAFE])).code).toBe(0);
    const badKind = await runCli(TARGET, ['lint', '--kind', 'sometimes', SAFE]);
    expect(badKind.code).toBe(3);
    expect(badKind.stderr).toContain('--kind must be regular or post-deploy');
    const badName = await runCli(TARGET, ['lint', 'examples/qa/app-queries.sql']);
    expect(badName.code).toBe(3);
    expect(badName.stderr).toContain('bad migration file name');
  });

  it('checks backfill files and the backfills migrations require, naming each file and line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dbchange-lint-backfills-'));
    try {
      mkdirSync(join(dir, 'db/backfills'), { recursive: true });
      mkdirSync(join(dir, 'db/post_migrate'), { recursive: true });
      writeFileSync(join(dir, 'dbchange.yaml'), ['migrations:', '  postDeploy: db/post_migrate', '  backfills: db/backfills', 'environments:', '  - name: staging', '    databaseUrl: postgres://postgres@127.0.0.1:1/none', 'approvers:', '  alice: [release-manager]', ''].join('\n'));
      writeFileSync(
        join(dir, 'db/backfills/20241104120000_fill_names.yaml'),
        ['table: users', 'key: id', 'batch: UPDATE users SET name_lower = lower(name) WHERE id >= :start', 'targetBatchDuration: soon', 'maxRowsPerSecond: -5', 'pauseWhen:', '  replicationLagOver: 5s', '  vacuumRunning: true', ''].join('\n'),
      );
      writeFileSync(join(dir, 'db/backfills/20241104120001_two_statements.yaml'), 'table: users\nkey: id\nbatch: UPDATE users SET a = 1 WHERE id >= :start AND id < :end; DELETE FROM users WHERE id >= :start AND id < :end\n');
      writeFileSync(join(dir, 'db/backfills/20241104120002_clean.yaml'), 'table: users\nkey: id\nbatch: UPDATE users SET a = 1 WHERE id >= :start AND id < :end\npauseWhen:\n  autovacuumOnTable: true\n');
      writeFileSync(join(dir, 'db/post_migrate/20241105000000_check_names.sql'), '-- migrate:up\n-- dbchange:requires-backfill fill_nmes\nALTER TABLE users ADD CONSTRAINT names_set CHECK (name_lower IS NOT NULL) NOT VALID;\n-- migrate:down\nALTER TABLE users DROP CONSTRAINT names_set;\n');

      const result = await runCli({ ...TARGET, configPath: join(dir, 'dbchange.yaml') }, ['lint', '--json']);
      expect(result.code, result.stderr).toBe(1);
      const report = parseJsonOutput<LintJson>(result);
      const found = report.findings.filter((finding) => finding.source === 'dbchange').map((finding) => `${finding.file.slice(finding.file.indexOf('db/'))}:${finding.line} ${finding.rule}: ${finding.message}`);
      expect(found.sort()).toEqual([
        'db/backfills/20241104120000_fill_names.yaml:3 invalid-backfill: batch: the SQL lacks :end; a batch covers keys from :start (included) to :end (excluded), e.g. WHERE id >= :start AND id < :end',
        'db/backfills/20241104120000_fill_names.yaml:4 invalid-backfill: targetBatchDuration: expected a duration such as 500ms, 1s, 2s',
        'db/backfills/20241104120000_fill_names.yaml:5 invalid-backfill: maxRowsPerSecond: above 0, e.g. 5000 rows a second',
        'db/backfills/20241104120000_fill_names.yaml:8 invalid-backfill: pauseWhen.vacuumRunning: unknown key (check its spelling)',
        'db/backfills/20241104120001_two_statements.yaml:3 backfill-one-statement: the batch holds more than one statement; each batch runs as one statement with :start and :end bound',
        'db/post_migrate/20241105000000_check_names.sql:2 requires-unknown-backfill: requires backfill fill_nmes, which no file of migrations.backfills names (known: fill_names, two_statements, clean)',
      ]);
      // The clean file alone passes.
      expect((await runCli({ ...TARGET, configPath: join(dir, 'dbchange.yaml') }, ['lint', join(dir, 'db/backfills/20241104120002_clean.yaml')])).code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
