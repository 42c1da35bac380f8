// Data-aware prechecks: which read-only question to ask the target database for each schema change, and what the answer means.
import type { SchemaChange } from './schema-changes';
import { displayTable, qualified, quoteIdent, type TableRef } from './sql-names';

export type PrecheckSeverity = 'block' | 'warn';

export type PrecheckKind = 'foreign-key-orphans' | 'not-null-violations' | 'check-violations' | 'unique-duplicates' | 'table-rewrite' | 'not-checked';

export interface PrecheckFinding {
  severity: PrecheckSeverity;
  check: PrecheckKind;
  /** Where the statement is: file:line for a migration, or the caller's label. */
  source: string;
  message: string;
  /** Rows that violate (orphans, NULLs, failing CHECK rows, duplicate groups). */
  count?: number;
  /** The first few offending keys, as text. */
  sample?: string[];
}

/** How many offending keys a finding shows. */
export const SAMPLE_SIZE = 5;

export function orphanQueries(change: Extract<SchemaChange, { kind: 'add-foreign-key' }>, referencedColumns: string[]): { count: string; sample: string } {
  const child = qualified(change.table);
  const parent = qualified(change.references);
  // MATCH SIMPLE (the default) does not check a row with any NULL key column.
  const notNull = change.columns.map((column) => `c.${quoteIdent(column)} IS NOT NULL`).join(' AND ');
  const join = change.columns.map((column, index) => `p.${quoteIdent(referencedColumns[index])} = c.${quoteIdent(column)}`).join(' AND ');
  const orphans = `FROM ${child} c WHERE ${notNull} AND NOT EXISTS (SELECT 1 FROM ${parent} p WHERE ${join})`;
  const key = change.columns.map((column) => `c.${quoteIdent(column)}::text`).join(` || ', ' || `);
  return {
    count: `SELECT count(*) AS rows, count(DISTINCT (${change.columns.map((column) => `c.${quoteIdent(column)}`).join(', ')})) AS keys ${orphans}`,
    sample: `SELECT DISTINCT ${key} AS key ${orphans} ORDER BY 1 LIMIT ${SAMPLE_SIZE}`,
  };
}

export function describeOrphans(
  change: Extract<SchemaChange, { kind: 'add-foreign-key' }>,
  source: string,
  rows: number,
  keys: number,
  sample: string[],
  /** The backfill that fills the referenced table, when the project has one: the finding names it. */
  fixedBy?: string,
): PrecheckFinding | undefined {
  if (rows === 0) return undefined;
  const backfillFirst = fixedBy
    ? `Backfill ${displayTable(change.references)} first: backfill ${fixedBy} does (\`dbchange backfill start ${fixedBy} --env ENVIRONMENT\`), and \`-- dbchange:requires-backfill ${fixedBy}\` makes this migration wait for it`
    : `Backfill ${displayTable(change.references)} first`;
  const name = change.constraint ?? 'the new foreign key';
  const what = `${rows} row${rows === 1 ? '' : 's'} of ${displayTable(change.table)} point${rows === 1 ? 's' : ''} at ${keys} missing ${displayTable(change.references)} row${keys === 1 ? '' : 's'} (first keys: ${sample.join('; ')})`;
  if (change.notValid) {
    return {
      severity: 'block',
      check: 'foreign-key-orphans',
      source,
      count: rows,
      sample,
      message: `${name} NOT VALID: ${what}. NOT VALID skips only the existing rows: every new INSERT or UPDATE is checked at once, so writes referencing missing ${displayTable(change.references)} rows will fail (seed 000). ${backfillFirst}, then retry`,
    };
  }
  return {
    severity: 'warn',
    check: 'foreign-key-orphans',
    source,
    count: rows,
    sample,
    message: `${name}: ${what}; the ADD will fail with 23503 and roll back. ${backfillFirst}, or add the key NOT VALID after the backfill`,
  };
}

/** The backfill (by name) that fills `table` (see tablesFilledBy), matching `public.t` with `t`. */
export function backfillFilling(backfills: readonly { name: string; tables: string[] }[], table: TableRef): string | undefined {
  const bare = (name: string) => name.replace(/^public\./, '').toLowerCase();
  return backfills.find((backfill) => backfill.tables.some((filled) => bare(filled) === bare(displayTable(table))))?.name;
}

export function nullCountQuery(table: TableRef, column: string): string {
  return `SELECT count(*) AS rows FROM ${qualified(table)} WHERE ${quoteIdent(column)} IS NULL`;
}

export function checkViolationQuery(table: TableRef, expression: string): string {
  // A CHECK passes when its expression is NULL, so only rows where it is false violate it.
  return `SELECT count(*) AS rows FROM ${qualified(table)} WHERE NOT (${expression})`;
}

export function duplicateQueries(table: TableRef, columns: string[], where: string | undefined): { count: string; sample: string } {
  const list = columns.map(quoteIdent).join(', ');
  const filter = [...columns.map((column) => `${quoteIdent(column)} IS NOT NULL`), ...(where ? [`(${where})`] : [])].join(' AND ');
  const groups = `SELECT ${columns.map((column) => `${quoteIdent(column)}::text`).join(` || ', ' || `)} AS key, count(*) AS n FROM ${qualified(table)} WHERE ${filter} GROUP BY ${list} HAVING count(*) > 1`;
  return {
    count: `SELECT count(*) AS rows FROM (${groups}) duplicates`,
    sample: `SELECT key FROM (${groups}) duplicates ORDER BY n DESC, key LIMIT ${SAMPLE_SIZE}`,
  };
}

export function tableSizeQuery(table: TableRef, column: string): { sql: string; params: string[] } {
  return {
    sql: `SELECT pg_total_relation_size(c.oid) AS bytes, c.reltuples::bigint AS estimated_rows, format_type(a.atttypid, a.atttypmod) AS current_type, a.atttypid AS type_oid
          FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $2 AND NOT a.attisdropped
          WHERE c.oid = to_regclass($1)`,
    params: [qualified(table), column],
  };
}

export function formatBytes(bytes: number): string {
  const units = ['bytes', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** One line for a blocked status: every blocking finding with its counts. */
export function describeBlocking(findings: PrecheckFinding[]): string {
  return findings
    .filter((finding) => finding.severity === 'block')
    .map((finding) => `${finding.source}: ${finding.message}`)
    .join(' | ');
}
