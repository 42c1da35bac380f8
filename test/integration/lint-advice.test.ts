import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lintMigrationText } from '../../activities/lint';
import { parseMigrationSource } from '../../core/migration-files';
import { createDatabase, query } from '../helpers/postgres';

// The fix the lint gives for a non-transactional statement is SQL that PostgreSQL runs twice without failing.
const CORPUS = join(__dirname, '../fixtures/lint');
const TABLES = `
  CREATE TABLE ci_runners (id bigint PRIMARY KEY, token text);
  CREATE UNIQUE INDEX index_ci_runners_on_token ON ci_runners (token);
  CREATE TABLE ci_runner_machines (id bigint PRIMARY KEY, runner_id bigint);
  INSERT INTO ci_runners VALUES (1, 'a');
  INSERT INTO ci_runner_machines VALUES (1, 1);`;

function corpusFile(name: string): { name: string; text: string } {
  const folder = name.startsWith('202401') ? 'unsafe' : 'safe';
  return { name, text: readFileSync(join(CORPUS, folder, name), 'utf8') };
}

/** The DO blocks a finding's fix proposes, as written there. */
async function advisedBlocks(file: { name: string; text: string }): Promise<string[]> {
  const findings = await lintMigrationText(file.name, file.text, 'post-deploy');
  const finding = findings.find((candidate) => candidate.rule === 'non-transactional-not-idempotent');
  expect(finding).toBeDefined();
  return finding!.fix.match(/DO \$\$ .*? END \$\$;/g) ?? [];
}

function nonTransactionalMigration(sql: string): string {
  return `-- migrate:up transaction:false\n${sql}\n`;
}

describe('lint advice for non-transactional migrations', () => {
  let database: Awaited<ReturnType<typeof createDatabase>>;
  beforeAll(async () => {
    database = await createDatabase('lintadvice');
    await query(database.url, TABLES);
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('advises two guards for a NOT VALID foreign key; each runs twice on PostgreSQL, adds the key once, and passes the lint', async () => {
    const blocks = await advisedBlocks(corpusFile('20240101000027_add_foreign_key_without_transaction.sql'));
    expect(blocks).toHaveLength(2);
    expect(blocks[0]).toContain('EXCEPTION WHEN duplicate_object THEN NULL');
    expect(blocks[1]).toContain('IF NOT EXISTS (SELECT 1 FROM pg_constraint');
    for (const block of blocks) {
      await query(database.url, block);
      await query(database.url, block);
      expect(await query(database.url, `SELECT convalidated FROM pg_constraint WHERE conname = 'fk_rails_3f92913d27'`)).toEqual([{ convalidated: false }]);
      expect(await lintMigrationText('20240301000001_guarded.sql', nonTransactionalMigration(block), 'post-deploy')).toEqual([]);
      await query(database.url, 'ALTER TABLE ci_runner_machines DROP CONSTRAINT fk_rails_3f92913d27');
    }
  });

  it('advises a catalog check for a unique constraint, which runs twice on PostgreSQL and passes the lint', async () => {
    const [block, ...others] = await advisedBlocks(corpusFile('20240101000029_add_unique_constraint_without_transaction.sql'));
    expect(others).toEqual([]);
    await query(database.url, block);
    await query(database.url, block);
    expect(await query(database.url, `SELECT contype FROM pg_constraint WHERE conname = 'index_ci_runners_on_token'`)).toEqual([{ contype: 'u' }]);
    expect(await lintMigrationText('20240301000002_guarded.sql', nonTransactionalMigration(block), 'post-deploy')).toEqual([]);
  });

  it('lets VALIDATE CONSTRAINT run without a transaction: validating again on PostgreSQL is harmless', async () => {
    const file = corpusFile('20240201000015_validate_foreign_key_without_transaction.sql');
    expect(await lintMigrationText(file.name, file.text, 'post-deploy')).toEqual([]);
    await query(database.url, 'ALTER TABLE ci_runner_machines ADD CONSTRAINT fk_rails_3f92913d27 FOREIGN KEY (runner_id) REFERENCES ci_runners (id) NOT VALID');
    const { up } = parseMigrationSource(file.name, file.text);
    await query(database.url, up);
    await query(database.url, up);
    expect(await query(database.url, `SELECT convalidated FROM pg_constraint WHERE conname = 'fk_rails_3f92913d27'`)).toEqual([{ convalidated: true }]);
  });
});
