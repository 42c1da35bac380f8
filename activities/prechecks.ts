// Asks the target database what each statement would meet: orphans, NULLs, duplicates, a rewrite. Read-only, time-bounded.
import type pg from 'pg';
import {
  checkViolationQuery,
  backfillFilling,
  describeOrphans,
  duplicateQueries,
  formatBytes,
  nullCountQuery,
  orphanQueries,
  tableSizeQuery,
  type PrecheckFinding,
} from '../core/prechecks';
import { parseSchemaChanges, type SchemaChange } from '../core/schema-changes';
import { displayTable, qualified } from '../core/sql-names';
import { withConnection } from './db';

const UNDEFINED_TABLE = '42P01';
const UNDEFINED_COLUMN = '42703';
const QUERY_CANCELED = '57014';

/** SQL to check, from a migration file or a change request step. */
export interface SqlToCheck {
  /** How findings name it: a file name, or a change request step. */
  label: string;
  sql: string;
  /** 1-based line of `label` where `sql` starts, so findings say file:line. */
  startLine?: number;
  /** false for a migration that runs without a transaction: a statement failing part-way is not rolled back. */
  transactional?: boolean;
  /** A change request step's `database:`, in an environment of several. */
  database?: string;
}

/** A backfill by the table it fills: an orphan count names the one that would fix it. */
export interface BackfillTable {
  name: string;
  tables: string[];
}

export async function runPrechecks(pool: pg.Pool, sources: SqlToCheck[], statementTimeoutMs: number, backfills: readonly BackfillTable[] = []): Promise<PrecheckFinding[]> {
  const checks: { where: string; change: SchemaChange; nonTransactional: boolean }[] = [];
  for (const source of sources) {
    for (const statement of await parseSchemaChanges(source.sql)) {
      const line = (source.startLine ?? 1) + (source.sql.slice(0, statement.offset).match(/\n/g)?.length ?? 0);
      for (const change of statement.changes) checks.push({ where: `${source.label}:${line}`, change, nonTransactional: statement.concurrently || source.transactional === false });
    }
  }
  // Most statements have nothing to ask the data: then no connection, no transaction.
  if (checks.length === 0) return [];
  const findings: PrecheckFinding[] = [];
  await withConnection(pool, async (client) => {
    // Read-only: a precheck can never change the database it looks at, whatever SQL it was given.
    await client.query(`BEGIN READ ONLY; SET LOCAL statement_timeout = ${Math.max(1, Math.round(statementTimeoutMs))}`);
    try {
      for (const { where, change, nonTransactional } of checks) {
        const finding = await guarded(client, where, statementTimeoutMs, () => checkChange(client, change, where, nonTransactional, backfills));
        if (finding) findings.push(finding);
      }
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
    }
  });
  return findings;
}

/** Runs one check in a savepoint: a table this SQL creates does not exist yet, and a slow count must not end the others. */
async function guarded(
  client: pg.PoolClient,
  where: string,
  timeoutMs: number,
  check: () => Promise<PrecheckFinding | undefined>,
): Promise<PrecheckFinding | undefined> {
  await client.query('SAVEPOINT precheck');
  try {
    const finding = await check();
    await client.query('RELEASE SAVEPOINT precheck');
    return finding;
  } catch (error) {
    await client.query('ROLLBACK TO SAVEPOINT precheck');
    const code = (error as { code?: string }).code;
    if (code === UNDEFINED_TABLE || code === UNDEFINED_COLUMN) return undefined; // created by this same SQL: nothing in it yet
    const message =
      code === QUERY_CANCELED
        ? `not checked: the count did not finish within ${Math.round(timeoutMs / 1000)}s (gates.precheckTimeout); check this table by hand`
        : `not checked: ${(error as Error).message}`;
    return { severity: 'warn', check: 'not-checked', source: where, message };
  }
}

/** `leavesDebris`: a failure would not roll back cleanly (CONCURRENTLY, or no transaction), so a doomed statement blocks. */
async function checkChange(client: pg.PoolClient, change: SchemaChange, where: string, leavesDebris: boolean, backfills: readonly BackfillTable[]): Promise<PrecheckFinding | undefined> {
  switch (change.kind) {
    case 'add-foreign-key': {
      const referenced = change.referencedColumns.length > 0 ? change.referencedColumns : await primaryKeyOf(client, qualified(change.references));
      if (referenced.length !== change.columns.length) return undefined;
      const queries = orphanQueries(change, referenced);
      const counted = (await client.query<{ rows: string; keys: string }>(queries.count)).rows[0];
      const rows = Number(counted.rows);
      const sample = rows > 0 ? (await client.query<{ key: string }>(queries.sample)).rows.map((row) => row.key) : [];
      return describeOrphans(change, where, rows, Number(counted.keys), sample, backfillFilling(backfills, change.references));
    }
    case 'set-not-null': {
      const rows = await countRows(client, nullCountQuery(change.table, change.column));
      if (rows === 0) return undefined;
      return {
        severity: 'warn',
        check: 'not-null-violations',
        source: where,
        count: rows,
        message: `${rows} row${rows === 1 ? '' : 's'} of ${displayTable(change.table)} have ${change.column} NULL; SET NOT NULL will fail with 23502 and roll back. Backfill them first`,
      };
    }
    case 'add-check': {
      const rows = await countRows(client, checkViolationQuery(change.table, change.expression));
      if (rows === 0) return undefined;
      const name = change.constraint ?? 'the new CHECK';
      return {
        severity: 'warn',
        check: 'check-violations',
        source: where,
        count: rows,
        message: change.notValid
          ? `${rows} row${rows === 1 ? '' : 's'} of ${displayTable(change.table)} violate ${name} (${change.expression}); NOT VALID lets them stay, but updates to them will be rejected and VALIDATE will fail until they are fixed`
          : `${rows} row${rows === 1 ? '' : 's'} of ${displayTable(change.table)} violate ${name} (${change.expression}); the ADD will fail with 23514 and roll back`,
      };
    }
    case 'create-unique-index': {
      if (!change.columns) {
        return { severity: 'warn', check: 'not-checked', source: where, message: `unique index ${change.index ?? ''} on expressions: duplicates not counted; check them by hand` };
      }
      const queries = duplicateQueries(change.table, change.columns, change.where);
      const groups = await countRows(client, queries.count);
      if (groups === 0) return undefined;
      const sample = (await client.query<{ key: string }>(queries.sample)).rows.map((row) => row.key);
      return {
        severity: leavesDebris ? 'block' : 'warn',
        check: 'unique-duplicates',
        source: where,
        count: groups,
        sample,
        message: `${groups} value${groups === 1 ? '' : 's'} of (${change.columns.join(', ')}) in ${displayTable(change.table)} appear more than once (first: ${sample.join('; ')}); the unique index cannot be built${leavesDebris ? ', and a failed CONCURRENTLY build leaves an INVALID index behind' : ''}. Remove the duplicates first`,
      };
    }
    case 'alter-column-type':
      return describeTypeChange(client, change, where);
    default:
      return undefined;
  }
}

async function describeTypeChange(client: pg.PoolClient, change: Extract<SchemaChange, { kind: 'alter-column-type' }>, where: string): Promise<PrecheckFinding | undefined> {
  const size = tableSizeQuery(change.table, change.column);
  const current = (await client.query<{ bytes: string; estimated_rows: string; current_type: string; type_oid: number }>(size.sql, size.params)).rows[0];
  if (!current) return undefined;
  // Binary-coercible casts (varchar → text, a wider varchar) keep the rows as they are; any other cast rewrites the table.
  const cast = await client.query<{ binary: boolean }>(
    `SELECT $1::oid = to_regtype($2)::oid OR EXISTS (SELECT 1 FROM pg_cast WHERE castsource = $1::oid AND casttarget = to_regtype($2)::oid AND castmethod = 'b') AS binary`,
    [current.type_oid, change.newType],
  );
  const rewrites = !cast.rows[0]?.binary;
  const table = displayTable(change.table);
  const bytes = formatBytes(Number(current.bytes));
  return {
    severity: 'warn',
    check: 'table-rewrite',
    source: where,
    message: rewrites
      ? `${table}.${change.column} ${current.current_type} → ${change.newType} rewrites the whole table (${bytes} with indexes, ~${Math.max(0, Number(current.estimated_rows))} rows) under an ACCESS EXCLUSIVE lock`
      : `${table}.${change.column} ${current.current_type} → ${change.newType} is binary-compatible: no rewrite (${bytes}); a shorter length or precision would still scan it`,
  };
}

async function primaryKeyOf(client: pg.PoolClient, table: string): Promise<string[]> {
  const result = await client.query<{ column: string }>(
    `SELECT a.attname AS column FROM pg_constraint k CROSS JOIN LATERAL unnest(k.conkey) WITH ORDINALITY AS key(attnum, position)
     JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = key.attnum
     WHERE k.conrelid = to_regclass($1) AND k.contype = 'p' ORDER BY key.position`,
    [table],
  );
  return result.rows.map((row) => row.column);
}

async function countRows(client: pg.PoolClient, sql: string): Promise<number> {
  return Number((await client.query<{ rows: string }>(sql)).rows[0].rows);
}
