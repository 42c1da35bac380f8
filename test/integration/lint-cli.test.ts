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
});
