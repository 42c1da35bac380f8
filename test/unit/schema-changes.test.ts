import { describe, expect, it } from 'vitest';
import { parseSchemaChanges } from '../../core/schema-changes';
import { checkViolationQuery, duplicateQueries, formatBytes, orphanQueries } from '../../core/prechecks';

describe('parseSchemaChanges', () => {
  it('reads a NOT VALID foreign key, its columns and the referenced table, pointing past leading comments', async () => {
    const sql = '-- seed 000\nALTER TABLE ci_runner_machines ADD CONSTRAINT fk_rails_3f92913d27\n  FOREIGN KEY (runner_id) REFERENCES ci.ci_runners_e59bb2812d (id) NOT VALID;';
    const [statement] = await parseSchemaChanges(sql);
    expect(statement.offset).toBe(sql.indexOf('ALTER'));
    expect(statement.changes).toEqual([
      {
        kind: 'add-foreign-key',
        table: { schema: undefined, name: 'ci_runner_machines' },
        constraint: 'fk_rails_3f92913d27',
        columns: ['runner_id'],
        references: { schema: 'ci', name: 'ci_runners_e59bb2812d' },
        referencedColumns: ['id'],
        notValid: true,
      },
    ]);
    expect(statement.rerunnable).toBe(false);
  });

  it('keeps a CHECK expression as written, nested parentheses and strings included', async () => {
    const [statement] = await parseSchemaChanges(`ALTER TABLE orders ADD CONSTRAINT ok CHECK ((total >= 0) AND note <> ')') NOT VALID`);
    expect(statement.changes).toEqual([{ kind: 'add-check', table: { schema: undefined, name: 'orders' }, constraint: 'ok', expression: `(total >= 0) AND note <> ')'`, notValid: true }]);
  });

  it('tells drops and renames of columns, tables and indexes apart, and whether a rerun is safe', async () => {
    const statements = await parseSchemaChanges(
      'ALTER TABLE plan_limits RENAME COLUMN web_hook_calls TO web_hook_calls_high; DROP TABLE IF EXISTS legacy; DROP INDEX CONCURRENTLY idx; ALTER TABLE t DROP COLUMN IF EXISTS c;',
    );
    expect(statements.map((statement) => [statement.changes.map((change) => `${change.kind} ${'objectType' in change ? change.objectType : ''} ${'name' in change ? change.name : ''}`), statement.rerunnable, statement.concurrently])).toEqual([
      [['rename column web_hook_calls'], undefined, false],
      [['drop table legacy'], true, false],
      [['drop index idx'], false, true],
      [['drop column c'], true, false],
    ]);
  });

  it('sees the changes a DO block makes, and calls it safe to rerun only when each statement is guarded against its second run', async () => {
    const fk = 'ALTER TABLE ci_runner_machines ADD CONSTRAINT fk_runner FOREIGN KEY (runner_id) REFERENCES ci_runners (id) NOT VALID';
    const exists = "SELECT 1 FROM pg_constraint WHERE conrelid = 'ci_runner_machines'::regclass AND conname = 'fk_runner'";
    const unique = 'ALTER TABLE ci_runners ADD CONSTRAINT u_token UNIQUE (token)';
    const blocks = [
      `DO $$ BEGIN ${fk}; EXCEPTION WHEN duplicate_object THEN NULL; END $$`,
      `DO $$ BEGIN ${fk}; EXCEPTION WHEN SQLSTATE '42710' THEN NULL; END $$`,
      `DO $$ BEGIN IF NOT EXISTS (${exists}) THEN ${fk}; END IF; END $$`,
      `DO $$ BEGIN ${fk}; EXCEPTION WHEN others THEN NULL; END $$`,
      `DO $$ BEGIN ${fk}; EXCEPTION WHEN duplicate_table THEN NULL; END $$`,
      `DO $$ BEGIN ${unique}; EXCEPTION WHEN duplicate_table THEN NULL; END $$`,
      `DO $$ BEGIN ${fk}; END $$`,
      "DO $$ BEGIN UPDATE t SET a = 1; RAISE NOTICE 'done'; END $$",
      'DO LANGUAGE plperl $$ 1 $$',
    ];
    const statements = await parseSchemaChanges(blocks.join(';\n'));
    expect(statements.map((statement) => statement.rerunnable)).toEqual([true, true, true, false, false, true, false, undefined, undefined]);
    // Prechecks look for orphans of a key added inside a DO block as of one added directly.
    expect(statements[0].changes).toEqual([expect.objectContaining({ kind: 'add-foreign-key', constraint: 'fk_runner', notValid: true })]);
    expect(statements[5].addedConstraints).toEqual([{ table: { schema: undefined, name: 'ci_runners' }, name: 'u_token', type: 'unique' }]);
  });

  it('calls VALIDATE CONSTRAINT safe to rerun, and an ALTER TABLE that also adds a column not', async () => {
    const [validate, mixed] = await parseSchemaChanges('ALTER TABLE t VALIDATE CONSTRAINT c; ALTER TABLE t VALIDATE CONSTRAINT c, ADD COLUMN d int;');
    expect([validate.rerunnable, mixed.rerunnable]).toEqual([true, false]);
  });

  it('gives plain columns of a unique index, and none for an expression index', async () => {
    const [plain, expression] = await parseSchemaChanges('CREATE UNIQUE INDEX u ON t (a, b) WHERE deleted_at IS NULL; CREATE UNIQUE INDEX v ON t (lower(a));');
    expect(plain.changes).toEqual([{ kind: 'create-unique-index', table: { schema: undefined, name: 't' }, index: 'u', columns: ['a', 'b'], where: 'deleted_at IS NULL' }]);
    expect(expression.changes).toEqual([expect.objectContaining({ kind: 'create-unique-index', columns: undefined })]);
  });
});

describe('precheck queries', () => {
  it('count orphans only among rows whose key columns are all set, as MATCH SIMPLE does', () => {
    const queries = orphanQueries(
      { kind: 'add-foreign-key', table: { name: 'm' }, columns: ['a', 'b'], references: { schema: 's', name: 'p' }, referencedColumns: [], notValid: true },
      ['x', 'y'],
    );
    expect(queries.count).toBe(
      'SELECT count(*) AS rows, count(DISTINCT (c."a", c."b")) AS keys FROM "m" c WHERE c."a" IS NOT NULL AND c."b" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "s"."p" p WHERE p."x" = c."a" AND p."y" = c."b")',
    );
  });

  it('count CHECK violations where the expression is false, not NULL, and duplicates among non-NULL keys within the index predicate', () => {
    expect(checkViolationQuery({ name: 'orders' }, 'total >= 0')).toBe('SELECT count(*) AS rows FROM "orders" WHERE NOT (total >= 0)');
    expect(duplicateQueries({ name: 't' }, ['a'], 'deleted_at IS NULL').count).toContain('WHERE "a" IS NOT NULL AND (deleted_at IS NULL) GROUP BY "a" HAVING count(*) > 1');
  });

  it('formats sizes for people', () => {
    expect([formatBytes(512), formatBytes(8192), formatBytes(3 * 1024 ** 3)]).toEqual(['512 bytes', '8.0 kB', '3.0 GB']);
  });
});
