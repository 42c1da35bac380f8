import { describe, expect, it } from 'vitest';
import {
  checkUniqueVersions,
  MigrationFileError,
  parseMigrationFileName,
  parseMigrationSource,
} from '../../core/migration-files';

const FILE = '20230109100044_cleanup_web_hook_calls_rename.sql';

function errorOf(run: () => unknown): MigrationFileError {
  try {
    run();
  } catch (error) {
    if (error instanceof MigrationFileError) return error;
    throw error;
  }
  throw new Error('expected a MigrationFileError');
}

describe('parseMigrationFileName', () => {
  it('splits a file name into its 14-digit version and its name', () => {
    expect(parseMigrationFileName(FILE)).toEqual({ version: '20230109100044', name: 'cleanup_web_hook_calls_rename' });
    expect(parseMigrationFileName('20991231235959_A1.sql')).toEqual({ version: '20991231235959', name: 'A1' });
  });

  it.each([
    'cleanup.sql',
    '2023010910004_short_version.sql',
    '202301091000440_long_version.sql',
    '20230109100044_add-index.sql',
    '20230109100044_add index.sql',
    '20230109100044_.sql',
    '20230109100044.sql',
    '20230109100044_add_index.SQL',
    '20230109100044_add_index.sql.bak',
    '20230109100044_add_index',
    'x20230109100044_add_index.sql',
  ])('refuses the file name %j and shows the expected shape', (fileName) => {
    const error = errorOf(() => parseMigrationFileName(fileName));
    expect(error.file).toBe(fileName);
    expect(error.problem).toContain('bad migration file name; expected <14-digit UTC timestamp>_<name>.sql');
    expect(error.message).toBe(`${fileName}: ${error.problem}`);
    expect(error.name).toBe('MigrationFileError');
  });

  it.each([
    ['20230009100044', 'month 00'],
    ['20231309100044', 'month 13'],
    ['20230100100044', 'day 00'],
    ['20230132100044', 'day 32'],
    ['20230109240044', 'hour 24'],
  ])('refuses version %s (%s) as not a UTC timestamp', (version) => {
    const error = errorOf(() => parseMigrationFileName(`${version}_bad_clock.sql`));
    expect(error.problem).toBe(`version ${version} is not a UTC timestamp (YYYYMMDDhhmmss)`);
  });

  it('accepts the edges of each checked field', () => {
    expect(parseMigrationFileName('20230101000000_first.sql').version).toBe('20230101000000');
    expect(parseMigrationFileName('20231231230000_last.sql').version).toBe('20231231230000');
  });
});

describe('parseMigrationSource', () => {
  it('returns the up and down sections exactly as written, with the line where up starts', () => {
    const text = [
      '-- migrate:up',
      'ALTER TABLE web_hook_calls RENAME TO web_hook_calls_old;',
      '',
      '-- migrate:down',
      'ALTER TABLE web_hook_calls_old RENAME TO web_hook_calls;',
      '',
    ].join('\n');
    expect(parseMigrationSource(FILE, text)).toEqual({
      version: '20230109100044',
      name: 'cleanup_web_hook_calls_rename',
      fileName: FILE,
      up: 'ALTER TABLE web_hook_calls RENAME TO web_hook_calls_old;\n',
      upStartLine: 2,
      down: 'ALTER TABLE web_hook_calls_old RENAME TO web_hook_calls;\n',
      transactional: true,
    });
  });

  it('counts lines before the up header into upStartLine', () => {
    const text = '-- Why: seed 000, backfill first.\n-- Author: alice\n\n-- migrate:up\nSELECT 1;\nSELECT 2;\n';
    const migration = parseMigrationSource(FILE, text);
    expect(migration.upStartLine).toBe(5);
    expect(text.split('\n')[migration.upStartLine - 1]).toBe('SELECT 1;');
    expect(migration.up).toBe('SELECT 1;\nSELECT 2;\n');
    expect(migration.down).toBeUndefined();
  });

  it('finds the up section when down is written first', () => {
    const text = '-- migrate:down\nDROP TABLE t;\n-- migrate:up\nCREATE TABLE t (id int);';
    const migration = parseMigrationSource(FILE, text);
    expect(migration.up).toBe('CREATE TABLE t (id int);');
    expect(migration.down).toBe('DROP TABLE t;');
    expect(migration.upStartLine).toBe(4);
  });

  it('reads files with Windows line endings', () => {
    const migration = parseMigrationSource(FILE, '-- migrate:up\r\nSELECT 1;\r\n-- migrate:down\r\nSELECT 2;\r\n');
    expect(migration.up).toBe('SELECT 1;');
    expect(migration.down).toBe('SELECT 2;\n');
    expect(migration.upStartLine).toBe(2);
  });

  it('recognises headers with extra or no space after the dashes and leading indentation', () => {
    expect(parseMigrationSource(FILE, '--migrate:up\nSELECT 1;').up).toBe('SELECT 1;');
    expect(parseMigrationSource(FILE, '  --   migrate:up\nSELECT 1;').up).toBe('SELECT 1;');
  });

  it('does not take a longer word such as migrate:upgrade for a header', () => {
    const error = errorOf(() => parseMigrationSource(FILE, '-- migrate:upgrade\nSELECT 1;'));
    expect(error.problem).toBe('no "-- migrate:up" section; put the SQL to apply under that line');
  });

  it('refuses a file without an up section', () => {
    const error = errorOf(() => parseMigrationSource(FILE, 'ALTER TABLE t ADD COLUMN c int;\n-- migrate:down\nSELECT 1;'));
    expect(error.file).toBe(FILE);
    expect(error.problem).toBe('no "-- migrate:up" section; put the SQL to apply under that line');
  });

  it('refuses a second up section and names the lines of both', () => {
    const error = errorOf(() => parseMigrationSource(FILE, '-- migrate:up\nSELECT 1;\n\n-- migrate:up\nSELECT 2;'));
    expect(error.problem).toBe('"-- migrate:up" appears 2 times (lines 1, 4)');
  });

  it('refuses a second down section', () => {
    const error = errorOf(() => parseMigrationSource(FILE, '-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 2;\n-- migrate:down\nSELECT 3;'));
    expect(error.problem).toBe('"-- migrate:down" appears more than once');
  });

  it.each([
    ['nothing', '-- migrate:up\n-- migrate:down\nDROP TABLE t;'],
    ['blank lines', '-- migrate:up\n\n   \n\t\n-- migrate:down\nDROP TABLE t;'],
    ['line comments', '-- migrate:up\n-- TODO: write this\n-- later\n'],
    ['a block comment', '-- migrate:up\n/* CREATE TABLE t (id int);\n   not yet */\n'],
  ])('refuses an up section that holds only %s', (_what, text) => {
    const error = errorOf(() => parseMigrationSource(FILE, text));
    expect(error.problem).toBe('the "-- migrate:up" section has no SQL');
  });

  it('allows an empty down section', () => {
    expect(parseMigrationSource(FILE, '-- migrate:up\nSELECT 1;\n-- migrate:down\n').down).toBe('');
  });

  it('runs outside a transaction when the header says transaction:false', () => {
    const migration = parseMigrationSource(
      FILE,
      '-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (c);\n',
    );
    expect(migration.transactional).toBe(false);
    expect(migration.up).toBe('CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (c);\n');
    expect(migration.upStartLine).toBe(2);
  });

  it('stays transactional with transaction:true or no option', () => {
    expect(parseMigrationSource(FILE, '-- migrate:up transaction:true\nSELECT 1;').transactional).toBe(true);
    expect(parseMigrationSource(FILE, '-- migrate:up\nSELECT 1;').transactional).toBe(true);
  });

  it('gives a file its own statement timeout with -- dbchange:statement-timeout', () => {
    expect(parseMigrationSource(FILE, '-- migrate:up\n-- dbchange:statement-timeout 2h\nUPDATE t SET c = 1;').statementTimeoutMs).toBe(7_200_000);
    expect(parseMigrationSource(FILE, '-- migrate:up\nSELECT 1;').statementTimeoutMs).toBeUndefined();
  });

  it('refuses an unknown dbchange directive or a bad duration, naming the line', () => {
    expect(errorOf(() => parseMigrationSource(FILE, '-- migrate:up\n-- dbchange:statement-timeout forever\nSELECT 1;')).problem).toBe(
      'line 2: -- dbchange:statement-timeout: expected a duration above 0 such as 30m or 2h, got "forever"',
    );
    expect(errorOf(() => parseMigrationSource(FILE, '-- migrate:up\nSELECT 1;\n-- dbchange:timeout 2h')).problem).toBe(
      'line 3: -- dbchange:timeout: unknown directive; known: dbchange:statement-timeout, dbchange:databases, dbchange:requires-backfill',
    );
  });

  it('reads options on the up header only', () => {
    const migration = parseMigrationSource(FILE, '-- migrate:up\nSELECT 1;\n-- migrate:down transaction:false\nSELECT 2;');
    expect(migration.transactional).toBe(true);
  });

  it.each(['concurrently:true', 'transaction', 'transaction:no', 'transaction:FALSE', 'transaction=false'])(
    'refuses the unknown option %j and names the only option',
    (option) => {
      const error = errorOf(() => parseMigrationSource(FILE, `-- migrate:up ${option}\nSELECT 1;`));
      expect(error.problem).toBe(`unknown option "${option}" on "-- migrate:up"; the only option is transaction:false`);
    },
  );

  it('checks the file name before the contents', () => {
    const error = errorOf(() => parseMigrationSource('add_index.sql', 'nothing here'));
    expect(error.problem).toContain('bad migration file name');
  });
});

describe('checkUniqueVersions', () => {
  it('accepts distinct versions', () => {
    expect(() =>
      checkUniqueVersions([
        { version: '20240101000000', fileName: '20240101000000_a.sql' },
        { version: '20240102000000', fileName: '20240102000000_b.sql' },
      ]),
    ).not.toThrow();
  });

  it('refuses two files with one version and names both', () => {
    const error = errorOf(() =>
      checkUniqueVersions([
        { version: '20240101000000', fileName: '20240101000000_a.sql' },
        { version: '20240102000000', fileName: '20240102000000_b.sql' },
        { version: '20240101000000', fileName: '20240101000000_c.sql' },
      ]),
    );
    expect(error.file).toBe('20240101000000_c.sql');
    expect(error.problem).toBe('duplicate version 20240101000000: also used by 20240101000000_a.sql; give one of them a new timestamp');
  });
});
