import { beforeAll, describe, expect, it } from 'vitest';
import { lineAt, loadSqlParser, splitStatements, type SqlStatement } from '../../core/sql-statements';

beforeAll(async () => {
  await loadSqlParser();
});

/** Each statement's offset must point at its own text in the original string. */
function expectOffsetsPointAtStatements(text: string, statements: SqlStatement[]): void {
  for (const statement of statements) {
    expect(text.slice(statement.offset, statement.offset + statement.sql.length)).toBe(statement.sql);
  }
}

describe('splitStatements', () => {
  it('splits statements in order with their character offsets', async () => {
    const text = 'CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\nSELECT * FROM t';
    expect(await splitStatements(text)).toEqual([
      { sql: 'CREATE TABLE t (id int)', offset: 0 },
      { sql: 'INSERT INTO t VALUES (1)', offset: 25 },
      { sql: 'SELECT * FROM t', offset: 51 },
    ]);
  });

  it('does not split on semicolons inside strings and quoted identifiers', async () => {
    const text = `INSERT INTO notes VALUES ('a;b', E'it\\'s; fine');\nSELECT "weird;name" FROM t;`;
    const statements = await splitStatements(text);
    expect(statements.map((s) => s.sql)).toEqual([
      `INSERT INTO notes VALUES ('a;b', E'it\\'s; fine')`,
      'SELECT "weird;name" FROM t',
    ]);
    expectOffsetsPointAtStatements(text, statements);
  });

  it('keeps dollar-quoted bodies whole, tagged or not', async () => {
    const text = [
      'CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $fn$',
      'BEGIN',
      '  NEW.updated_at := now();',
      '  RETURN NEW;',
      'END;',
      '$fn$;',
      "DO $$ BEGIN PERFORM 1; PERFORM 'x;y'; END $$;",
    ].join('\n');
    const statements = await splitStatements(text);
    expect(statements).toHaveLength(2);
    expect(statements[0].sql).toBe(text.slice(0, text.indexOf('$fn$;') + 4));
    expect(statements[1].sql).toBe("DO $$ BEGIN PERFORM 1; PERFORM 'x;y'; END $$");
    expectOffsetsPointAtStatements(text, statements);
  });

  it('does not split on semicolons in comments and points offsets past leading comments', async () => {
    const text = 'SELECT 1; -- a; b\n/* c; d */\n-- e;\nSELECT 2 /* f; */;\n';
    const statements = await splitStatements(text);
    expect(statements.map((s) => s.sql)).toEqual(['SELECT 1', 'SELECT 2 /* f; */']);
    expect(statements[1].offset).toBe(text.indexOf('SELECT 2'));
    expectOffsetsPointAtStatements(text, statements);
  });

  it('maps offsets back to characters after multibyte text', async () => {
    const text = "INSERT INTO t VALUES ('café', 'ünïcödé');\nINSERT INTO t VALUES ('🦄; 日本語');\nSELECT 'ok'";
    const statements = await splitStatements(text);
    expect(statements.map((s) => s.sql)).toEqual([
      "INSERT INTO t VALUES ('café', 'ünïcödé')",
      "INSERT INTO t VALUES ('🦄; 日本語')",
      "SELECT 'ok'",
    ]);
    expect(statements[2].offset).toBe(text.indexOf("SELECT 'ok'"));
    expectOffsetsPointAtStatements(text, statements);
  });

  it('drops empty statements and returns nothing for comment-only or blank text', async () => {
    expect(await splitStatements('-- nothing to do\n/* really */\n')).toEqual([]);
    expect(await splitStatements('\n  \n')).toEqual([]);
    expect((await splitStatements('SELECT 1;;\n;SELECT 2;')).map((s) => s.sql)).toEqual(['SELECT 1', 'SELECT 2']);
  });

  it('throws the parser syntax error with a position for malformed SQL', async () => {
    const text = 'SELECT 1;\nSELEC 2;';
    const error = await splitStatements(text).then(
      () => undefined,
      (thrown: unknown) => thrown as Error & { sqlDetails?: { cursorPosition?: number } },
    );
    expect(error?.message).toBe('syntax error at or near "SELEC"');
    expect(error?.sqlDetails?.cursorPosition).toBe(text.indexOf('SELEC '));
  });
});

describe('lineAt', () => {
  const section = 'SELECT 1;\n\nSELECT 2;\nSELECT 3;';

  it('returns the section start line for offset 0', () => {
    expect(lineAt(section, 0, 7)).toBe(7);
  });

  it('counts the newlines before the offset', () => {
    expect(lineAt(section, section.indexOf('SELECT 2'), 7)).toBe(9);
    expect(lineAt(section, section.indexOf('SELECT 3'), 7)).toBe(10);
    expect(lineAt(section, section.indexOf('2;'), 1)).toBe(3);
  });

  it('puts a newline character itself on the line it ends', () => {
    expect(lineAt(section, section.indexOf('\n'), 1)).toBe(1);
  });

  it('stops at the end of the section for an offset past it', () => {
    expect(lineAt(section, 10_000, 1)).toBe(4);
  });

  it('gives each split statement its file line', async () => {
    const up = 'ALTER TABLE a ADD c int;\n\n-- backfill\nUPDATE a SET c = 0;\nALTER TABLE a\n  ALTER c SET NOT NULL;';
    const statements = await splitStatements(up);
    expect(statements.map((s) => lineAt(up, s.offset, 12))).toEqual([12, 15, 16]);
  });
});
