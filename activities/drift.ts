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

/**
 * What PostgreSQL copied to partitions, and from which parent object. A query of its own: only partitions' objects
 * have a parent, and joining the links into every branch of the catalog query made all of it slower.
 */
const PARENTS_SQL = `
-- A partition's index attached to the parent's partitioned index, and a partition's inherited columns: pg_inherits.
SELECT 'index ' || n.nspname || '.' || c.relname AS object, 'index ' || pn.nspname || '.' || p.relname AS parent
FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class p ON p.oid = h.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
WHERE c.relkind IN ('i', 'I')
UNION ALL
SELECT 'column ' || n.nspname || '.' || c.relname || '.' || a.attname, 'column ' || pn.nspname || '.' || p.relname || '.' || a.attname
FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class p ON p.oid = h.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attinhcount > 0
WHERE c.relispartition
UNION ALL
-- conparentid links a partition's foreign key, unique and primary key to the parent's; CHECK constraints are inherited by name.
SELECT 'constraint ' || n.nspname || '.' || c.relname || '.' || k.conname, 'constraint ' || pn.nspname || '.' || p.relname || '.' || kp.conname
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_constraint kp ON kp.oid = k.conparentid JOIN pg_class p ON p.oid = kp.conrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
WHERE k.conparentid <> 0
UNION ALL
SELECT 'constraint ' || n.nspname || '.' || c.relname || '.' || k.conname, 'constraint ' || pn.nspname || '.' || p.relname || '.' || k.conname
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_inherits h ON h.inhrelid = c.oid JOIN pg_class p ON p.oid = h.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
WHERE c.relispartition AND k.conparentid = 0 AND k.coninhcount > 0
UNION ALL
-- tgparentid (PostgreSQL 13 and later) names the trigger a partition's trigger was cloned from.
SELECT 'trigger ' || n.nspname || '.' || c.relname || '.' || t.tgname, 'trigger ' || pn.nspname || '.' || p.relname || '.' || tp.tgname
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_trigger tp ON tp.oid = t.tgparentid JOIN pg_class p ON p.oid = tp.tgrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
WHERE t.tgparentid <> 0`;

export async function readSchemaSnapshot(db: pg.Pool | pg.ClientBase): Promise<SchemaSnapshot> {
  const hasMigrations = (await db.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [SCHEMA_MIGRATIONS_TABLE])).rows[0].t;
  const versions = hasMigrations ? (await db.query<{ version: string }>(`SELECT version FROM ${SCHEMA_MIGRATIONS_TABLE} ORDER BY version`)).rows.map((row) => row.version) : [];
  const catalog: Record<string, string> = {};
  for (const row of (await db.query<{ object: string; definition: string }>(CATALOG_SQL)).rows) catalog[row.object] = row.definition;
  const parents: Record<string, string> = {};
  for (const row of (await db.query<{ object: string; parent: string }>(PARENTS_SQL)).rows) parents[row.object] = row.parent;
  return { versions, catalog, parents };
}

/** Compares two databases of the project (by address): versions split into regular and post-deploy by the post-deploy folder. */
export async function driftBetween(config: DbChangeConfig, pools: DatabasePools, first: string, second: string): Promise<DriftReport> {
  const a = resolveTarget(config, first);
  const b = resolveTarget(config, second);
  const postDeployVersions = new Set(readMigrationDir(config.migrations.postDeploy).map((migration) => migration.version));
  const [left, right] = await Promise.all([readSchemaSnapshot(pools.pool(a)), readSchemaSnapshot(pools.pool(b))]);
  return compareSnapshots(first, left, second, right, postDeployVersions);
}
