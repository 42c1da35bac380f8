import { describe, expect, it } from 'vitest';
import { backfillDatabase, BackfillFileError, parseBackfillFile } from '../../core/backfill-file';
import { parseConfig } from '../../core/config';
import { lintBackfillText, lintRequiredBackfills } from '../../core/backfill-lint';
import { parseMigrationSource } from '../../core/migration-files';

const GOOD = [
  'table: ci_runners_e59bb2812d',
  'key: id',
  'batch: |',
  '  INSERT INTO ci_runners_e59bb2812d (id, runner_type)',
  '  SELECT id, runner_type FROM ci_runners WHERE id >= :start AND id < :end',
  '  ON CONFLICT DO NOTHING',
  'targetBatchDuration: 500ms',
  'maxRowsPerSecond: 20000',
  'pauseWhen:',
  '  replicationLagOver: 30s',
  '  autovacuumOnTable: true',
  '  lockWaitersOver: 2',
  "  query: SELECT EXISTS (SELECT 1 FROM ops_flags WHERE name = 'pause-backfills')",
].join('\n');

function problemsOf(fileName: string, text: string): string[] {
  try {
    parseBackfillFile(fileName, text);
  } catch (error) {
    if (error instanceof BackfillFileError) return error.problems;
    throw error;
  }
  throw new Error('expected the file to be refused');
}

describe('parseBackfillFile', () => {
  it('reads every setting, with durations in milliseconds and defaults for the rest', () => {
    const file = parseBackfillFile('20241104120000_backfill_ci_runners.yaml', GOOD);
    expect(file).toMatchObject({
      name: 'backfill_ci_runners',
      version: '20241104120000',
      table: 'ci_runners_e59bb2812d',
      key: 'id',
      targetBatchMs: 500,
      maxRowsPerSecond: 20_000,
      maxBatchSize: 100_000,
      pauseWhen: { replicationLagOverMs: 30_000, autovacuumOnTable: true, lockWaitersOver: 2, query: "SELECT EXISTS (SELECT 1 FROM ops_flags WHERE name = 'pause-backfills')" },
    });
    expect(file.checksum).toMatch(/^[0-9a-f]{64}$/);
  });

  it('defaults the target batch duration to one second', () => {
    expect(parseBackfillFile('20241104120000_b.yaml', 'table: t\nkey: id\nbatch: UPDATE t SET a = 1 WHERE id >= :start AND id < :end\n').targetBatchMs).toBe(1_000);
  });

  it('reports every problem at once, each with its line and key', () => {
    const text = ['table: "bad table"', 'key: id', 'batch: UPDATE t SET a = 1 WHERE id >= :start', 'targetBatchDuration: soon', 'maxBatchSize: -5', 'pauseWhen:', '  replicationLag: 5s', 'colour: blue'].join('\n');
    expect(problemsOf('20241104120000_b.yaml', text)).toEqual([
      'line 1: table: a table name, optionally schema-qualified (e.g. ci_runners or ci.runners)',
      'line 4: targetBatchDuration: expected a duration such as 500ms, 1s, 2s',
      expect.stringMatching(/^line 5: maxBatchSize: /),
      'line 7: pauseWhen.replicationLag: unknown key (check its spelling)',
      'line 8: colour: unknown key (check its spelling)',
      'line 3: batch: the SQL lacks :end; a batch covers keys from :start (included) to :end (excluded), e.g. WHERE id >= :start AND id < :end',
    ]);
  });

  it('names a missing key', () => {
    expect(problemsOf('20241104120000_b.yaml', 'table: t\nbatch: UPDATE t SET a = 1 WHERE id >= :start AND id < :end\n')).toEqual(['line 1: key: missing: add it']);
  });

  it('refuses a file name without a version', () => {
    expect(problemsOf('backfill.yaml', GOOD)[0]).toMatch(/expected <14-digit UTC timestamp>_<name>.yaml/);
  });
});

describe('-- dbchange:requires-backfill', () => {
  it('names the backfills a migration waits for', () => {
    const text = '-- dbchange:requires-backfill backfill_ci_runners\n-- migrate:up\nALTER TABLE m ADD CONSTRAINT fk FOREIGN KEY (runner_id) REFERENCES r (id) NOT VALID;\n';
    expect(parseMigrationSource('20241106120000_add_fk.sql', text).requiresBackfill).toEqual(['backfill_ci_runners']);
  });

  it('refuses a value that is not one name', () => {
    expect(() => parseMigrationSource('20241106120000_add_fk.sql', '-- dbchange:requires-backfill a b\n-- migrate:up\nSELECT 1;\n')).toThrow(/line 1: -- dbchange:requires-backfill: expected one backfill's name/);
  });
});

describe('dbchange lint on backfills', () => {
  it('turns each problem of a file into a finding at its line', () => {
    const findings = lintBackfillText('db/backfills/20241104120000_b.yaml', '20241104120000_b.yaml', 'table: t\nkey: id\nbatch: UPDATE t SET a = 1\n');
    expect(findings).toEqual([expect.objectContaining({ line: 3, rule: 'invalid-backfill', message: expect.stringContaining('the SQL lacks :start and :end') })]);
  });

  it('finds a batch of two statements', () => {
    const text = "table: t\nkey: id\nbatch: UPDATE t SET a = ';' WHERE id >= :start AND id < :end; DELETE FROM t WHERE id >= :start AND id < :end\n";
    expect(lintBackfillText('f.yaml', '20241104120000_b.yaml', text).map((finding) => [finding.line, finding.rule])).toEqual([[3, 'backfill-one-statement']]);
    expect(lintBackfillText('f.yaml', '20241104120000_b.yaml', GOOD)).toEqual([]);
  });

  it('finds a migration that requires a backfill no file names', () => {
    const text = '-- dbchange:requires-backfill backfill_runners\n-- migrate:up\nSELECT 1;\n';
    expect(lintRequiredBackfills('m.sql', text, ['backfill_ci_runners'])).toEqual([expect.objectContaining({ line: 1, rule: 'requires-unknown-backfill' })]);
    expect(lintRequiredBackfills('m.sql', text, ['backfill_runners'])).toEqual([]);
  });
});

describe('the database a backfill runs on', () => {
  const yaml = ['migrations:', '  postDeploy: db/post_migrate', '  backfills: db/backfills', 'environments:', '  - name: one', '    databaseUrl: postgres://x/one', '  - name: two', '    databases:', '      main: postgres://x/main', '      ci: postgres://x/ci'].join('\n');
  const config = parseConfig(yaml, '/p/dbchange.yaml', {}, '/p');

  it('is the only one, or the one its database: names', () => {
    expect(config.migrations.backfills).toBe('/p/db/backfills');
    expect(backfillDatabase(config, 'one', { fileName: 'f.yaml' }).address).toBe('one');
    expect(backfillDatabase(config, 'two', { fileName: 'f.yaml', database: 'ci' }).address).toBe('two/ci');
  });

  it('must be named where an environment has several', () => {
    expect(() => backfillDatabase(config, 'two', { fileName: 'f.yaml' })).toThrow(/environment two has several databases \(main, ci\); say which with database: in f.yaml/);
    expect(() => backfillDatabase(config, 'two', { fileName: 'f.yaml', database: 'sec' })).toThrow(/has no database "two\/sec"/);
  });
});
