import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checksumOf, readMigrationDir, readMigrationVersion } from '../../core/migration-dir';
import { MigrationFileError } from '../../core/migration-files';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dbchange-migrations-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const write = (fileName: string, text: string) => writeFileSync(join(dir, fileName), text);
const migration = (sql: string) => `-- migrate:up\n${sql}\n-- migrate:down\n`;

describe('checksumOf', () => {
  it('is the hex sha256 of the text', () => {
    expect(checksumOf('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(checksumOf('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('changes when one character changes, including whitespace', () => {
    expect(checksumOf('SELECT 1;\n')).not.toBe(checksumOf('SELECT 1; \n'));
  });
});

describe('readMigrationDir', () => {
  it('returns the migrations sorted by version with path and checksum of their text', () => {
    write('20240301000000_third.sql', migration('SELECT 3;'));
    write('20240101000000_first.sql', migration('SELECT 1;'));
    write('20240201000000_second.sql', migration('SELECT 2;'));

    const migrations = readMigrationDir(dir);

    expect(migrations.map((m) => m.fileName)).toEqual([
      '20240101000000_first.sql',
      '20240201000000_second.sql',
      '20240301000000_third.sql',
    ]);
    expect(migrations[0]).toMatchObject({
      version: '20240101000000',
      name: 'first',
      path: join(dir, '20240101000000_first.sql'),
      up: 'SELECT 1;',
      upStartLine: 2,
      down: '',
      transactional: true,
      checksum: checksumOf('-- migrate:up\nSELECT 1;\n-- migrate:down\n'),
    });
  });

  it('gives files with identical text the same checksum and edited files a different one', () => {
    write('20240101000000_a.sql', migration('SELECT 1;'));
    write('20240102000000_b.sql', migration('SELECT 1;'));
    write('20240103000000_c.sql', migration('SELECT 1 ;'));
    const [a, b, c] = readMigrationDir(dir);
    expect(a.checksum).toBe(b.checksum);
    expect(c.checksum).not.toBe(a.checksum);
    expect(a.checksum).toMatch(/^[0-9a-f]{64}$/);
  });

  it('ignores files that are not .sql', () => {
    write('20240101000000_a.sql', migration('SELECT 1;'));
    write('README.md', '# post-deploy migrations');
    write('20240102000000_b.sql.bak', 'not a migration');
    write('.gitkeep', '');
    write('notes.txt', 'remember seed 002');
    expect(readMigrationDir(dir).map((m) => m.fileName)).toEqual(['20240101000000_a.sql']);
  });

  it('returns an empty list for an empty folder', () => {
    expect(readMigrationDir(dir)).toEqual([]);
  });

  it('reads the transaction:false option through', () => {
    write('20240101000000_index.sql', '-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (c);\n');
    expect(readMigrationDir(dir)[0].transactional).toBe(false);
  });

  it('refuses two files with one version', () => {
    write('20240101000000_add_column.sql', migration('SELECT 1;'));
    write('20240101000000_add_index.sql', migration('SELECT 2;'));
    expect(() => readMigrationDir(dir)).toThrow(
      new MigrationFileError(
        '20240101000000_add_index.sql',
        'duplicate version 20240101000000: also used by 20240101000000_add_column.sql; give one of them a new timestamp',
      ),
    );
  });

  it('refuses a .sql file with a bad name instead of skipping it', () => {
    write('20240101000000_ok.sql', migration('SELECT 1;'));
    write('add_index.sql', migration('SELECT 2;'));
    expect(() => readMigrationDir(dir)).toThrow(/^add_index\.sql: bad migration file name/);
  });

  it('refuses a .sql file with no up section and names it', () => {
    write('20240101000000_empty.sql', '-- nothing yet\n');
    expect(() => readMigrationDir(dir)).toThrow('20240101000000_empty.sql: no "-- migrate:up" section');
  });

  it('says the folder is missing and which setting names it', () => {
    const missing = join(dir, 'post_migrate');
    expect(() => readMigrationDir(missing)).toThrow(
      `${missing}: migrations folder not found; check migrations.postDeploy in dbchange.yaml`,
    );
  });

  it('does not descend into subfolders', () => {
    mkdirSync(join(dir, 'archive'));
    writeFileSync(join(dir, 'archive', '20200101000000_old.sql'), migration('SELECT 0;'));
    write('20240101000000_a.sql', migration('SELECT 1;'));
    expect(readMigrationDir(dir).map((m) => m.fileName)).toEqual(['20240101000000_a.sql']);
  });
});

describe('readMigrationVersion', () => {
  it('reads only the file with that version, with the same fields and checksum as the folder read', () => {
    write('20240101000000_create_runners.sql', migration('CREATE TABLE runners (id int);'));
    write('20240102000000_create_machines.sql', migration('CREATE TABLE machines (id int);'));
    write('20240103000000_broken.sql', 'no sections at all');
    const one = readMigrationVersion(dir, '20240102000000');
    expect(one?.fileName).toBe('20240102000000_create_machines.sql');
    expect(one?.checksum).toBe(checksumOf(migration('CREATE TABLE machines (id int);')));
    expect(one?.up).toBe('CREATE TABLE machines (id int);');
  });

  it('returns undefined for a version no file has', () => {
    write('20240101000000_create_runners.sql', migration('SELECT 1;'));
    expect(readMigrationVersion(dir, '20240109000000')).toBeUndefined();
  });

  it('refuses two files with that version', () => {
    write('20240101000000_add_column.sql', migration('SELECT 1;'));
    write('20240101000000_add_index.sql', migration('SELECT 2;'));
    expect(() => readMigrationVersion(dir, '20240101000000')).toThrow(/duplicate version 20240101000000/);
  });
});
