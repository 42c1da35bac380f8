import { describe, expect, it } from 'vitest';
import { MigrationFileError, parseMigrationFileName, parseMigrationSource } from '../../core/migration-files';
import { migrationVersion, NEW_MIGRATION_TEXT, newMigrationFileName } from '../../core/new-migration';

const AT = new Date('2026-03-04T05:06:07.890Z');

describe('dbchange new: the file a new migration gets', () => {
  it('versions the file with the UTC time to the second, as 14 digits', () => {
    expect(migrationVersion(AT)).toBe('20260304050607');
    expect(newMigrationFileName('add_index', AT, [])).toBe('20260304050607_add_index.sql');
  });

  it('gives a name the loader reads back as the same version and name', () => {
    expect(parseMigrationFileName(newMigrationFileName('Add_Index_2', AT, []))).toEqual({ version: '20260304050607', name: 'Add_Index_2' });
  });

  it('takes the next free second when a file in either folder already has that version', () => {
    const existing = ['20260304050607_create_users.sql', '20260304050608_add_index.sql', 'README.md'];
    expect(newMigrationFileName('add_index', AT, existing)).toBe('20260304050609_add_index.sql');
  });

  it.each(['add-index', 'add index', 'add_index.sql', '', 'ümlaut', '../escape'])('refuses the name %j the way the loader would, naming the rule', (name) => {
    let error: unknown;
    try {
      newMigrationFileName(name, AT, []);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(MigrationFileError);
    expect((error as MigrationFileError).message).toBe(`${name}: not a migration name: use letters, digits and underscores, e.g. add_index`);
    expect(() => parseMigrationFileName(`20260304050607_${name}.sql`)).toThrow(MigrationFileError);
  });

  it('writes both sections, which the loader finds once SQL is under the up one', () => {
    const withSql = NEW_MIGRATION_TEXT.replace('-- migrate:up\n', '-- migrate:up\nCREATE INDEX items_name ON items (name);\n');
    const source = parseMigrationSource('20260304050607_add_index.sql', withSql);
    expect(source.up.trim()).toBe('CREATE INDEX items_name ON items (name);');
    expect(source.down?.trim()).toBe('');
    expect(source.transactional).toBe(true);
  });
});
