// Connections per database and dbchange's bookkeeping tables.
import pg from 'pg';
import { requireDatabaseUrl, type DatabaseTarget } from '../core/config';

/** One key for every dbchange applier on a database: two appliers never interleave. */
export const APPLIER_LOCK_KEY = 0x6462_6368; // "dbch"
/**
 * The applier lock of the schema a connection works in. In public it is APPLIER_LOCK_KEY, the key every dbchange
 * has taken; a schema target (a fleet's tenant) gets a key of its own, so the schemas of one database are applied
 * side by side while two appliers of one schema still never interleave.
 */
const APPLIER_LOCK = `CASE WHEN current_schema() IS NOT DISTINCT FROM 'public' THEN ${APPLIER_LOCK_KEY}::bigint
  ELSE (${APPLIER_LOCK_KEY}::bigint << 32) | (hashtext(current_schema())::bigint & 4294967295) END`;
export const TAKE_APPLIER_LOCK_SQL = `SELECT pg_advisory_xact_lock(${APPLIER_LOCK})`;
export const TAKE_SESSION_APPLIER_LOCK_SQL = `SELECT pg_advisory_lock(${APPLIER_LOCK})`;
export const RELEASE_SESSION_APPLIER_LOCK_SQL = `SELECT pg_advisory_unlock(${APPLIER_LOCK})`;
export const SCHEMA_MIGRATIONS_TABLE = 'schema_migrations';
export const LEDGER_TABLE = 'dbchange_migration_log';
export const CHANGE_LOG_TABLE = 'dbchange_change_log';
/**
 * aborted: a person stopped the migration while it ran; its SQL was cancelled and rolled back. skipped: its
 * `-- dbchange:databases` header names other databases, so this one records it as done without running it.
 */
const LEDGER_OUTCOMES = ['applied', 'marked-complete', 'failed', 'aborted', 'skipped'];
/** The newest outcome: a ledger whose check lacks it was written by an older dbchange and is widened once. */
const NEWEST_OUTCOME = 'skipped';
const OUTCOME_CHECK = `CHECK (outcome IN (${LEDGER_OUTCOMES.map((outcome) => `'${outcome}'`).join(', ')}))`;

export const CREATE_BOOKKEEPING_SQL = `
CREATE TABLE IF NOT EXISTS ${SCHEMA_MIGRATIONS_TABLE} (version varchar PRIMARY KEY);
CREATE TABLE IF NOT EXISTS ${LEDGER_TABLE} (
  id bigserial PRIMARY KEY,
  version varchar NOT NULL,
  name text NOT NULL,
  checksum text NOT NULL,
  outcome text NOT NULL CONSTRAINT ${LEDGER_TABLE}_outcome_check ${OUTCOME_CHECK},
  started_at timestamptz NOT NULL,
  finished_at timestamptz NOT NULL DEFAULT now(),
  duration_ms integer NOT NULL,
  attempts integer NOT NULL DEFAULT 1,
  lock_retries integer NOT NULL DEFAULT 0,
  workflow_id text,
  decided_by text,
  error text
);
CREATE INDEX IF NOT EXISTS ${LEDGER_TABLE}_version_idx ON ${LEDGER_TABLE} (version);
-- A ledger written by an older dbchange accepts fewer outcomes: widen its check once (a catalog lookup otherwise).
DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_constraint WHERE conname = '${LEDGER_TABLE}_outcome_check'
              AND conrelid = '${LEDGER_TABLE}'::regclass AND pg_get_constraintdef(oid) NOT LIKE '%${NEWEST_OUTCOME}%') THEN
    ALTER TABLE ${LEDGER_TABLE} DROP CONSTRAINT ${LEDGER_TABLE}_outcome_check,
      ADD CONSTRAINT ${LEDGER_TABLE}_outcome_check ${OUTCOME_CHECK} NOT VALID;
  END IF;
END $$;
CREATE TABLE IF NOT EXISTS ${CHANGE_LOG_TABLE} (
  id bigserial PRIMARY KEY,
  change_id text NOT NULL,
  checksum text NOT NULL,
  environment text NOT NULL,
  phase text NOT NULL CHECK (phase IN ('execute', 'rollback')),
  step_id text NOT NULL,
  finished_at timestamptz NOT NULL DEFAULT now(),
  attempts integer NOT NULL DEFAULT 1,
  workflow_id text NOT NULL,
  run_id text NOT NULL,
  -- A step runs once per run, environment and phase: a retry after a lost acknowledgement finds this row.
  UNIQUE (run_id, environment, phase, step_id)
);
`;

export class DatabasePools {
  private readonly pools = new Map<string, pg.Pool>();

  pool(target: DatabaseTarget): pg.Pool {
    let pool = this.pools.get(target.address);
    if (!pool) {
      pool = new pg.Pool({
        connectionString: requireDatabaseUrl(target),
        max: 4,
        application_name: 'dbchange',
        // A backend whose worker died notices within a second and rolls back, releasing its locks. A schema target
        // (validated as a plain identifier) keeps its tables, schema_migrations and ledger in its own schema.
        options: `-c client_connection_check_interval=1000${target.schema ? ` -c search_path=${target.schema}` : ''}`,
      });
      // An idle connection that dies is replaced on next use; the error must not crash the worker.
      pool.on('error', () => undefined);
      // A connection lost while checked out also emits 'error' on its client; the pending query already rejects with it.
      pool.on('connect', (client) => client.on('error', () => undefined));
      this.pools.set(target.address, pool);
    }
    return pool;
  }

  /** Ends one database's connections, e.g. a fleet target's once it is done. */
  async release(address: string): Promise<void> {
    const pool = this.pools.get(address);
    this.pools.delete(address);
    await pool?.end().catch(() => undefined);
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((pool) => pool.end()));
    this.pools.clear();
  }
}

/** True when the bookkeeping tables exist as this dbchange writes them: one light read, no DDL and no notices. */
const BOOKKEEPING_READY_SQL = `
SELECT to_regclass('${SCHEMA_MIGRATIONS_TABLE}') IS NOT NULL AND to_regclass('${CHANGE_LOG_TABLE}') IS NOT NULL
   AND to_regclass('${LEDGER_TABLE}_version_idx') IS NOT NULL
   AND EXISTS (SELECT 1 FROM pg_constraint WHERE conname = '${LEDGER_TABLE}_outcome_check'
                AND conrelid = to_regclass('${LEDGER_TABLE}') AND pg_get_constraintdef(oid) LIKE '%${NEWEST_OUTCOME}%') AS ready`;

/** Creates schema_migrations and the ledger if missing; callers hold the applier lock, so creators never race. */
export async function ensureBookkeeping(client: pg.PoolClient | pg.Client): Promise<void> {
  const ready = await client.query<{ ready: boolean }>(BOOKKEEPING_READY_SQL);
  if (!ready.rows[0]?.ready) await client.query(CREATE_BOOKKEEPING_SQL);
}

/** Runs `work` in a transaction that holds the applier lock, with the bookkeeping tables in place. */
export async function inApplierTransaction<T>(client: pg.PoolClient, work: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    await client.query(TAKE_APPLIER_LOCK_SQL);
    await ensureBookkeeping(client);
    const result = await work();
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * Records a migration as done without running it: a person's mark-complete, or a database its header leaves out
 * (skipped). Once only: a retry after a lost acknowledgement finds the schema_migrations row and writes nothing.
 */
export async function recordWithoutRunning(
  pool: pg.Pool,
  migration: { version: string; name: string; checksum: string },
  record: { outcome: 'marked-complete' | 'skipped'; workflowId: string; decidedBy?: string },
): Promise<void> {
  await withConnection(pool, (client) =>
    inApplierTransaction(client, async () => {
      const inserted = await client.query(`INSERT INTO ${SCHEMA_MIGRATIONS_TABLE} (version) VALUES ($1) ON CONFLICT DO NOTHING`, [migration.version]);
      if ((inserted.rowCount ?? 0) === 0) return;
      await client.query(
        `INSERT INTO ${LEDGER_TABLE} (version, name, checksum, outcome, started_at, duration_ms, workflow_id, decided_by)
         VALUES ($1, $2, $3, $4, now(), 0, $5, $6)`,
        [migration.version, migration.name, migration.checksum, record.outcome, record.workflowId, record.decidedBy ?? null],
      );
    }),
  );
}

/** Borrows a connection from the pool for `work` and always gives it back. */
export async function withConnection<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    return await work(client);
  } finally {
    client.release();
  }
}

export interface AppliedState {
  versions: Set<string>;
  /** Checksum of the latest successful ledger row per version (absent for rows dbchange did not write). */
  checksums: Map<string, string>;
}

/** What a database says has run. A database that never saw dbchange has run nothing. */
export async function readAppliedState(db: pg.Pool | pg.ClientBase): Promise<AppliedState> {
  const exists = await db.query<{ migrations: string | null; ledger: string | null }>(
    `SELECT to_regclass($1) AS migrations, to_regclass($2) AS ledger`,
    [SCHEMA_MIGRATIONS_TABLE, LEDGER_TABLE],
  );
  const versions = new Set<string>();
  const checksums = new Map<string, string>();
  if (exists.rows[0].migrations) {
    const rows = await db.query<{ version: string }>(`SELECT version FROM ${SCHEMA_MIGRATIONS_TABLE}`);
    for (const row of rows.rows) versions.add(row.version);
  }
  if (exists.rows[0].ledger) {
    const rows = await db.query<{ version: string; checksum: string }>(
      `SELECT DISTINCT ON (version) version, checksum FROM ${LEDGER_TABLE}
       WHERE outcome IN ('applied', 'marked-complete', 'skipped') ORDER BY version, id DESC`,
    );
    for (const row of rows.rows) checksums.set(row.version, row.checksum);
  }
  return { versions, checksums };
}
