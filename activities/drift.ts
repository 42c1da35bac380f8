// Reads what drift compares: schema_migrations and the catalog (tables, columns, constraints, indexes, triggers).
import type pg from 'pg';
import { resolveTarget, type DbChangeConfig } from '../core/config';
import { compareSnapshots, type DriftReport, type SchemaSnapshot } from '../core/drift';
import { readMigrationDir } from '../core/migration-dir';
import { DatabasePools, LEDGER_TABLE, SCHEMA_MIGRATIONS_TABLE } from './db';

const USER_SCHEMAS = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'`;
/** dbchange's own bookkeeping differs between environments by design. */
const OWN_TABLES = `c.relname NOT IN ('${SCHEMA_MIGRATIONS_TABLE}', '${LEDGER_TABLE}')`;

const CATALOG_SQL = `
SELECT 'table ' || n.nspname || '.' || c.relname AS object, CASE c.relkind WHEN 'p' THEN 'partitioned table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' ELSE 'table' END AS definition
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm') AND ${USER_SCHEMAS} AND ${OWN_TABLES}
UNION ALL
SELECT 'column ' || n.nspname || '.' || c.relname || '.' || a.attname,
       format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm') AND ${USER_SCHEMAS} AND ${OWN_TABLES}
UNION ALL
SELECT 'constraint ' || n.nspname || '.' || c.relname || '.' || k.conname,
       pg_get_constraintdef(k.oid) -- ends in NOT VALID while the constraint is not validated
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE ${USER_SCHEMAS} AND ${OWN_TABLES}
UNION ALL
SELECT 'index ' || n.nspname || '.' || i.relname,
       pg_get_indexdef(x.indexrelid) || CASE WHEN x.indisvalid THEN '' ELSE ' (INVALID)' END
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid JOIN pg_namespace n ON n.oid = i.relnamespace
WHERE ${USER_SCHEMAS} AND ${OWN_TABLES}
UNION ALL
SELECT 'trigger ' || n.nspname || '.' || c.relname || '.' || t.tgname,
       pg_get_triggerdef(t.oid) || CASE WHEN t.tgenabled = 'D' THEN ' (disabled)' ELSE '' END
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal AND ${USER_SCHEMAS}`;

export async function readSchemaSnapshot(db: pg.Pool | pg.ClientBase): Promise<SchemaSnapshot> {
  const hasMigrations = (await db.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [SCHEMA_MIGRATIONS_TABLE])).rows[0].t;
  const versions = hasMigrations ? (await db.query<{ version: string }>(`SELECT version FROM ${SCHEMA_MIGRATIONS_TABLE} ORDER BY version`)).rows.map((row) => row.version) : [];
  const catalog: Record<string, string> = {};
  for (const row of (await db.query<{ object: string; definition: string }>(CATALOG_SQL)).rows) catalog[row.object] = row.definition;
  return { versions, catalog };
}

/** Compares two databases of the project (by address): versions split into regular and post-deploy by the post-deploy folder. */
export async function driftBetween(config: DbChangeConfig, pools: DatabasePools, first: string, second: string): Promise<DriftReport> {
  const a = resolveTarget(config, first);
  const b = resolveTarget(config, second);
  const postDeployVersions = new Set(readMigrationDir(config.migrations.postDeploy).map((migration) => migration.version));
  const [left, right] = await Promise.all([readSchemaSnapshot(pools.pool(a)), readSchemaSnapshot(pools.pool(b))]);
  return compareSnapshots(first, left, second, right, postDeployVersions);
}
