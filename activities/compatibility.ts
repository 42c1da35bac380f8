// The compatibility gate: EXPLAIN (never run) the running application's queries against an environment (seed 002).
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type pg from 'pg';
import { parseSync } from 'libpg-query';
import { loadSqlParser, splitStatements } from '../core/sql-statements';
import type { AppQuery, CompatibilityResult, IncompatibleQuery } from '../core/compatibility';
import { withConnection } from './db';

/** Statement kinds an application issues; BEGIN, SET and the like say nothing about the schema. */
const QUERY_TYPES = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);
const PG_STAT_STATEMENTS_LIMIT = 500;

/** The queries in a SQL file, each with the line it starts on. */
export async function readQueryFile(path: string): Promise<AppQuery[]> {
  const text = readFileSync(path, 'utf8');
  await loadSqlParser();
  const queries: AppQuery[] = [];
  for (const statement of await splitStatements(text)) {
    const parsed = parseSync(statement.sql) as { stmts?: { stmt: Record<string, unknown> }[] };
    const type = Object.keys(parsed.stmts?.[0]?.stmt ?? {})[0];
    if (!QUERY_TYPES.has(type)) continue;
    const line = 1 + (text.slice(0, statement.offset).match(/\n/g)?.length ?? 0);
    queries.push({ source: `${basename(path)}:${line}`, sql: statement.sql });
  }
  return queries;
}

/** What pg_stat_statements saw the application run on this database; none when the extension is not there. */
export async function capturePgStatStatements(pool: pg.Pool): Promise<AppQuery[]> {
  const present = await pool.query<{ view: string | null }>(`SELECT to_regclass('pg_stat_statements') AS view`);
  if (!present.rows[0].view) return [];
  const rows = await pool.query<{ query: string }>(
    `SELECT query FROM pg_stat_statements
     WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND query ~* '^\\s*(select|insert|update|delete|with)\\s' AND query !~* 'pg_stat_statements|schema_migrations|dbchange_'
     ORDER BY calls DESC LIMIT ${PG_STAT_STATEMENTS_LIMIT}`,
  );
  return rows.rows.map((row) => ({ source: 'pg_stat_statements', sql: row.query }));
}

/**
 * Plans each query without running it: EXPLAIN, or PREPARE for one with $n parameters (PostgreSQL before 16
 * cannot EXPLAIN those). Read-only and rolled back, so nothing the queries would write is written.
 */
export async function explainQueries(pool: pg.Pool, environment: string, queries: AppQuery[], statementTimeoutMs: number): Promise<CompatibilityResult> {
  const failures: IncompatibleQuery[] = [];
  await withConnection(pool, async (client) => {
    await client.query('BEGIN READ ONLY');
    try {
      await client.query(`SET LOCAL statement_timeout = ${Math.max(1, Math.round(statementTimeoutMs))}`);
      for (const query of queries) {
        await client.query('SAVEPOINT compatibility');
        try {
          if (/\$\d/.test(query.sql)) {
            await client.query(`PREPARE dbchange_compatibility AS ${query.sql}`);
            await client.query('DEALLOCATE dbchange_compatibility');
          } else {
            await client.query(`EXPLAIN ${query.sql}`);
          }
          await client.query('RELEASE SAVEPOINT compatibility');
        } catch (error) {
          await client.query('ROLLBACK TO SAVEPOINT compatibility');
          failures.push({ ...query, sqlstate: (error as { code?: string }).code, error: (error as Error).message });
        }
      }
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
    }
  });
  return { environment, checked: queries.length, failures };
}
