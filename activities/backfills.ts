// Backfill batches on the database: each batch and its ledger row commit in one transaction, so a batch retried
// after a lost acknowledgement (or a killed worker) finds its row and is never applied twice.
import { ApplicationFailure, Context } from '@temporalio/activity';
import type pg from 'pg';
import { BACKFILL_FINISHED_SIGNAL, backfillWorkflowId, batchKeys, bindBatchSql, pauseReason, paceDelayMs, type BackfillSpec, type BackfillState, type KeyRange, type PauseReadings, type PauseReason } from '../core/backfill';
import { BackfillFileError, backfillDatabase, readBackfill, type BackfillFile } from '../core/backfill-file';
import { ConfigError, type DatabaseTarget, type DbChangeConfig } from '../core/config';
import { describeBackfillStatus, type BackfillStatus } from '../core/backfill-status';
import { PIPELINE_WORKFLOW_TYPE } from '../core/pipeline';
import { environmentOf } from '../core/targets';
import { classifyPgError, describeSqlState, type PgErrorFields } from '../core/pg-errors';
import { quoteIdent } from '../core/sql-names';
import { TRANSIENT_DATABASE_ERROR } from './apply-migration';
import { whileHeartbeating } from './heartbeat';
import { settleFailure } from './step-progress';
import { withConnection, type DatabasePools } from './db';

export const BACKFILLS_TABLE = 'dbchange_backfills';
export const BACKFILL_LEDGER_TABLE = 'dbchange_backfill_batches';
export const BACKFILL_BATCH_FAILED = 'BackfillBatchFailed';
export const BACKFILL_FILE_CHANGED = 'BackfillFileChanged';
export const INVALID_BACKFILL = 'InvalidBackfill';
/** Serializes the creation of the bookkeeping tables, and two batches of one backfill (with the name's hash). */
const BACKFILL_LOCK_KEY = 0x6466_6266; // "dfbf"
/** A batch may run this many times its target before statement_timeout splits it. */
const STATEMENT_TIMEOUT_FACTOR = 10;
const MIN_STATEMENT_TIMEOUT_MS = 5_000;

const CREATE_BACKFILL_TABLES_SQL = `
CREATE TABLE IF NOT EXISTS ${BACKFILLS_TABLE} (
  name text PRIMARY KEY,
  version text NOT NULL,
  checksum text NOT NULL,
  state text NOT NULL,
  key_start bigint,
  key_end bigint,
  rows_done bigint NOT NULL DEFAULT 0,
  workflow_id text,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  decided_by text
);
CREATE TABLE IF NOT EXISTS ${BACKFILL_LEDGER_TABLE} (
  backfill text NOT NULL,
  batch_start bigint NOT NULL,
  batch_end bigint NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('applied', 'skipped')),
  rows bigint NOT NULL,
  duration_ms integer NOT NULL,
  finished_at timestamptz NOT NULL DEFAULT now(),
  workflow_id text,
  decided_by text,
  error text,
  PRIMARY KEY (backfill, batch_start)
);`;

/** A migration's required backfill, as the pipeline waits for it. */
export interface BackfillWait {
  name: string;
  /** The database the backfill runs on, and its environment. */
  target: string;
  environment: string;
  state: BackfillState | 'not-started';
  finished: boolean;
  workflowId: string;
  /** Where it stands, from its workflow's status, while it runs. */
  progress?: string;
}

export interface BackfillRef {
  environment: string;
  name: string;
}

export interface BackfillPlan {
  spec: BackfillSpec;
  /** The database's address (`staging`, or `staging/ci`). */
  target: string;
  range: KeyRange;
  /** Keys below this are done: what an earlier run of this backfill applied or skipped. */
  cursor: number;
  rowsDone: number;
  approvers: Record<string, string[]>;
  /** approvals.signatures of dbchange.yaml: whether decisions are checked for signatures, and must carry one. */
  signatures?: DbChangeConfig['signatures'];
  /** Set when the database records this backfill as finished already. */
  finished: boolean;
  /** Why nothing runs when the file changed after the backfill finished, and what to do instead. */
  editedAfterFinish?: string;
}

export type BatchResult =
  | { kind: 'applied'; rows: number; durationMs: number; alreadyApplied: boolean }
  | { kind: 'paused'; reason: PauseReason }
  | { kind: 'timed-out'; durationMs: number };

export interface BatchRequest extends BackfillRef {
  checksum: string;
  start: number;
  end: number;
  checkPause: boolean;
}

export function createBackfillActivities(config: DbChangeConfig, pools: DatabasePools) {
  const fileOf = (name: string): BackfillFile => {
    if (!config.migrations.backfills) throw ApplicationFailure.create({ type: INVALID_BACKFILL, nonRetryable: true, message: 'dbchange.yaml names no backfills folder; add migrations: { backfills: db/backfills }' });
    try {
      return readBackfill(config.migrations.backfills, name);
    } catch (error) {
      if (error instanceof BackfillFileError) throw ApplicationFailure.create({ type: INVALID_BACKFILL, nonRetryable: true, message: error.message.replace(/\n\s*/g, ' ') });
      throw error;
    }
  };
  const checkedFile = (name: string, checksum: string): BackfillFile => {
    const file = fileOf(name);
    if (file.checksum !== checksum) {
      throw ApplicationFailure.create({ type: BACKFILL_FILE_CHANGED, nonRetryable: true, message: `${file.fileName} changed after this backfill started; what runs must be what started: restore it, or cancel and start again` });
    }
    return file;
  };
  const targetOf = (environment: string, file: Pick<BackfillSpec, 'database' | 'fileName'>): DatabaseTarget => backfillTarget(config, environment, file);
  const poolOf = (environment: string, file: BackfillFile) => pools.pool(targetOf(environment, file));

  return {
    /** Reads the file and the key range, and records the backfill as running (or says it finished already). */
    async planBackfill(ref: BackfillRef): Promise<BackfillPlan> {
      const file = fileOf(ref.name);
      const target = targetOf(ref.environment, file);
      const workflowId = (Context.current().info.workflowExecution?.workflowId ?? '');
      const spec: BackfillSpec = { ...file };
      delete (spec as Partial<BackfillFile>).path;
      return withConnection(pools.pool(target), async (client) => {
        await ensureBackfillTables(client);
        const recorded = await client.query<{ state: string; key_start: string | null; key_end: string | null; checksum: string }>(`SELECT state, key_start, key_end, checksum FROM ${BACKFILLS_TABLE} WHERE name = $1`, [file.name]);
        const row = recorded.rows[0];
        let range: KeyRange;
        if (row?.key_start != null && row.key_end != null && row.checksum === file.checksum) range = { start: Number(row.key_start), end: Number(row.key_end) };
        else {
          const bounds = await client.query<{ low: string | null; high: string | null }>(`SELECT min(${quoteIdent(file.key)})::bigint AS low, max(${quoteIdent(file.key)})::bigint AS high FROM ${quoteTable(file.table)}`);
          const low = bounds.rows[0].low === null ? 0 : Number(bounds.rows[0].low);
          const high = bounds.rows[0].high === null ? -1 : Number(bounds.rows[0].high);
          range = { start: low, end: high + 1 };
        }
        const done = await client.query<{ cursor: string | null; rows: string | null }>(`SELECT max(batch_end)::bigint AS cursor, sum(rows)::bigint AS rows FROM ${BACKFILL_LEDGER_TABLE} WHERE backfill = $1`, [file.name]);
        // Its batches are recorded by name: a file edited after it finished would run on no key. Say so, and how.
        const finished = row?.state === 'finished';
        const editedSince = finished && row.checksum !== file.checksum;
        if (!finished) {
          await client.query(
            `INSERT INTO ${BACKFILLS_TABLE} (name, version, checksum, state, key_start, key_end, workflow_id) VALUES ($1, $2, $3, 'running', $4, $5, $6)
             ON CONFLICT (name) DO UPDATE SET version = $2, checksum = $3, state = 'running', key_start = $4, key_end = $5, workflow_id = $6, finished_at = NULL`,
            [file.name, file.version, file.checksum, range.start, range.end, workflowId],
          );
        }
        return {
          spec,
          target: target.address,
          range,
          cursor: Math.max(range.start, done.rows[0].cursor === null ? range.start : Number(done.rows[0].cursor)),
          rowsDone: Number(done.rows[0].rows ?? 0),
          approvers: config.approvers,
          signatures: config.signatures,
          finished,
          ...(editedSince && {
            editedAfterFinish: `${file.fileName} changed after this backfill finished on ${target.address}; its batches are recorded by name, so the edited SQL would run on no key. To run it over the table, save it as a new backfill (a new name); to keep the record straight, restore the file`,
          }),
        };
      });
    },

    /** Checks the pause conditions (when asked), then runs keys [start, end) and writes its ledger row, in one transaction. */
    async runBackfillBatch(request: BatchRequest): Promise<BatchResult> {
      const file = checkedFile(request.name, request.checksum);
      const pool = poolOf(request.environment, file);
      return whileHeartbeating(async () => {
        if (request.checkPause) {
          const reason = pauseReason(file.pauseWhen, await readPauseConditions(pool, file, config.gates.precheckTimeoutMs));
          if (reason) return { kind: 'paused', reason };
        }
        const workflowId = (Context.current().info.workflowExecution?.workflowId ?? '');
        const started = Date.now();
        try {
          // The batch's own transaction time: what its size is tuned by, waits for a connection left out.
          const outcome = await withConnection(pool, (client) => applyBatch(client, file, request, workflowId, statementTimeoutOf(file, config), config.lockRetry.lockTimeoutMs));
          if (!outcome.alreadyApplied) await pace(paceDelayMs(outcome.rows, outcome.durationMs, file.maxRowsPerSecond));
          return { kind: 'applied', ...outcome };
        } catch (error) {
          const fields = error as PgErrorFields;
          const kind = typeof fields?.message === 'string' ? classifyPgError(fields) : 'permanent';
          if (kind === 'statement-timeout') return { kind: 'timed-out', durationMs: Date.now() - started };
          if (kind === 'transient') {
            // Tried again, at most lockRetry.maxAttempts times in all, and each failed try is shown in the status.
            const failure = ApplicationFailure.create({ type: TRANSIENT_DATABASE_ERROR, message: `${batchKeys(request)} of ${file.fileName}: ${sqlStateLabel(fields.code)}: ${fields.message}`, details: [{ start: request.start, end: request.end, sqlState: fields.code ?? null }] });
            throw await settleFailure(batchKeys(request), failure, config.lockRetry.maxAttempts);
          }
          if (error instanceof ApplicationFailure) throw error;
          throw ApplicationFailure.create({
            type: BACKFILL_BATCH_FAILED,
            nonRetryable: true,
            message: `${batchKeys(request)} of ${file.fileName} failed: ${sqlStateLabel(fields.code)}: ${fields.message}${fields.detail ? ` (${fields.detail})` : ''}`,
            details: [{ start: request.start, end: request.end, sqlState: fields.code ?? null }],
          });
        }
      });
    },

    /** A person's skip-batch: the range is recorded as skipped, not run, so the ledger says which keys were left out. */
    async skipBackfillBatch(request: BackfillRef & { start: number; end: number; decidedBy: string; error?: string }): Promise<void> {
      const file = fileOf(request.name);
      await withConnection(poolOf(request.environment, file), (client) =>
        client.query(
          `INSERT INTO ${BACKFILL_LEDGER_TABLE} (backfill, batch_start, batch_end, outcome, rows, duration_ms, workflow_id, decided_by, error)
           VALUES ($1, $2, $3, 'skipped', 0, 0, $4, $5, $6) ON CONFLICT DO NOTHING`,
          [file.name, request.start, request.end, (Context.current().info.workflowExecution?.workflowId ?? ''), request.decidedBy, request.error?.slice(0, 2_000) ?? null],
        ),
      );
    },

    /**
     * Where each named backfill stands on the database it runs on in `target`'s environment: finished (the database
     * records it so), or not yet, with its progress when its workflow answers. For `-- dbchange:requires-backfill`.
     */
    async backfillsFinishedOn(request: { target: string; names: string[] }): Promise<BackfillWait[]> {
      const environment = environmentOf(request.target);
      const waits: BackfillWait[] = [];
      for (const name of request.names) {
        const file = fileOf(name);
        const target = targetOf(environment, file);
        const row = await withConnection(pools.pool(target), async (client) => {
          await ensureBackfillTables(client);
          const found = await client.query<{ state: string; checksum: string }>(`SELECT state, checksum FROM ${BACKFILLS_TABLE} WHERE name = $1`, [name]);
          return found.rows[0];
        });
        const finished = row?.state === 'finished';
        const workflowId = backfillWorkflowId(environment, name);
        let progress: string | undefined;
        if (!finished && row) {
          try {
            const status = await Context.current().client.workflow.getHandle(workflowId).query<BackfillStatus>('status');
            progress = describeBackfillStatus(status).slice(1).join('; ');
          } catch {
            // A workflow that ended or cannot answer: the database's state is what counts.
          }
        }
        waits.push({ name, target: target.address, environment, state: row ? (row.state as BackfillState) : 'not-started', finished, workflowId, ...(progress ? { progress } : {}) });
      }
      return waits;
    },

    /** Tells running pipelines that a backfill finished on a database, so one waiting for it goes on at once. */
    async wakePipelinesWaitingFor(finished: { target: string; name: string }): Promise<number> {
      const { client } = Context.current();
      let woken = 0;
      for await (const workflow of client.workflow.list({ query: `WorkflowType = '${PIPELINE_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'` })) {
        await client.workflow.getHandle(workflow.workflowId).signal(BACKFILL_FINISHED_SIGNAL, finished).then(() => woken++, () => undefined);
      }
      return woken;
    },

    /** The backfill's state in the database: finished is what `-- dbchange:requires-backfill` waits for. */
    async recordBackfillState(request: BackfillRef & { state: BackfillState; rowsDone: number; decidedBy?: string }): Promise<void> {
      const file = fileOf(request.name);
      await withConnection(poolOf(request.environment, file), async (client) => {
        await ensureBackfillTables(client);
        await client.query(
          `UPDATE ${BACKFILLS_TABLE} SET state = $2, rows_done = $3, decided_by = $4, finished_at = CASE WHEN $2 IN ('finished', 'cancelled', 'aborted') THEN now() END WHERE name = $1`,
          [file.name, request.state, request.rowsDone, request.decidedBy ?? null],
        );
      });
    },
  };
}

/** The database of `environment` a backfill runs on: the only one, or the one its `database:` names. */
export function backfillTarget(config: DbChangeConfig, environment: string, file: Pick<BackfillSpec, 'database' | 'fileName'>): DatabaseTarget {
  try {
    return backfillDatabase(config, environment, file);
  } catch (error) {
    if (error instanceof ConfigError) throw ApplicationFailure.create({ type: 'ConfigError', nonRetryable: true, message: error.problems.join('; ') });
    throw error;
  }
}

/** Creates the two bookkeeping tables once; the advisory lock keeps two first batches from racing to create them. */
export async function ensureBackfillTables(client: pg.ClientBase): Promise<void> {
  const ready = await client.query<{ ready: boolean }>(`SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AS ready`, [BACKFILLS_TABLE, BACKFILL_LEDGER_TABLE]);
  if (ready.rows[0].ready) return;
  await client.query('BEGIN');
  try {
    await client.query(`SELECT pg_advisory_xact_lock(${BACKFILL_LOCK_KEY})`);
    await client.query(CREATE_BACKFILL_TABLES_SQL);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

async function applyBatch(client: pg.PoolClient, file: BackfillFile, request: BatchRequest, workflowId: string, statementTimeoutMs: number, lockTimeoutMs: number): Promise<{ rows: number; alreadyApplied: boolean; durationMs: number }> {
  await ensureBackfillTables(client);
  const began = Date.now();
  await client.query('BEGIN');
  try {
    // Row locks held by the application are waited for briefly: a lock timeout is transient, and the batch is retried.
    await client.query(`SET LOCAL lock_timeout = ${Math.round(lockTimeoutMs)}`);
    // One batch of a backfill at a time, even from two workers: the ledger check below cannot race.
    await client.query(`SELECT pg_advisory_xact_lock(${BACKFILL_LOCK_KEY}, hashtext($1))`, [file.name]);
    const recorded = await client.query<{ batch_start: string; batch_end: string; rows: string }>(
      `SELECT batch_start, batch_end, rows FROM ${BACKFILL_LEDGER_TABLE} WHERE backfill = $1 AND batch_start < $3 AND batch_end > $2`,
      [file.name, request.start, request.end],
    );
    if (recorded.rows.length > 0) {
      await client.query('ROLLBACK');
      const exact = recorded.rows.length === 1 && Number(recorded.rows[0].batch_start) === request.start && Number(recorded.rows[0].batch_end) === request.end;
      if (!exact) {
        throw ApplicationFailure.create({ type: BACKFILL_BATCH_FAILED, nonRetryable: true, message: `corrupted backfill ledger: keys ${request.start}..${request.end - 1} of ${file.name} overlap batches already recorded (${recorded.rows.map((row) => `${row.batch_start}..${Number(row.batch_end) - 1}`).join(', ')})` });
      }
      return { rows: Number(recorded.rows[0].rows), alreadyApplied: true, durationMs: Date.now() - began };
    }
    await client.query(`SET LOCAL statement_timeout = ${Math.round(statementTimeoutMs)}`);
    const started = Date.now();
    const applied = await client.query(bindBatchSql(file.batch), [request.start, request.end]);
    const rows = applied.rowCount ?? 0;
    await client.query(
      // clock_timestamp(): when the batch's SQL ended (now() would be when its transaction began).
      `INSERT INTO ${BACKFILL_LEDGER_TABLE} (backfill, batch_start, batch_end, outcome, rows, duration_ms, workflow_id, finished_at) VALUES ($1, $2, $3, 'applied', $4, $5, $6, clock_timestamp())`,
      [file.name, request.start, request.end, rows, Date.now() - started, workflowId],
    );
    await client.query('COMMIT');
    return { rows, alreadyApplied: false, durationMs: Date.now() - began };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** Reads only what the file's pauseWhen asks about; each query is bounded by gates.precheckTimeout. */
export async function readPauseConditions(pool: pg.Pool, file: Pick<BackfillSpec, 'pauseWhen' | 'table'>, timeoutMs: number): Promise<PauseReadings> {
  const { pauseWhen } = file;
  if (Object.keys(pauseWhen).length === 0) return {};
  return withConnection(pool, async (client) => {
    await client.query('BEGIN READ ONLY');
    try {
      await client.query(`SET LOCAL statement_timeout = ${Math.round(timeoutMs)}`);
      const readings: PauseReadings = {};
      if (pauseWhen.replicationLagOverMs !== undefined) {
        const lag = await client.query<{ lag_ms: number | null }>(`SELECT (extract(epoch FROM max(replay_lag)) * 1000)::float8 AS lag_ms FROM pg_stat_replication`);
        readings.replicationLagMs = Number(lag.rows[0]?.lag_ms ?? 0);
      }
      if (pauseWhen.autovacuumOnTable) {
        const running = await client.query<{ running: boolean }>(
          `SELECT EXISTS (SELECT 1 FROM pg_stat_progress_vacuum v JOIN pg_stat_activity a ON a.pid = v.pid
                           WHERE v.relid = to_regclass($1) AND a.backend_type = 'autovacuum worker') AS running`,
          [file.table],
        );
        readings.autovacuumRunning = running.rows[0].running;
      }
      if (pauseWhen.lockWaitersOver !== undefined) {
        // Sessions waiting for the table itself, or for a row lock held by a session that holds a lock on the table.
        const waiters = await client.query<{ waiters: number }>(
          `SELECT count(*)::int AS waiters FROM pg_stat_activity a
            WHERE a.wait_event_type = 'Lock' AND a.pid <> pg_backend_pid()
              AND (EXISTS (SELECT 1 FROM pg_locks w WHERE w.pid = a.pid AND NOT w.granted AND w.relation = to_regclass($1))
                   OR EXISTS (SELECT 1 FROM pg_locks h WHERE h.granted AND h.relation = to_regclass($1) AND h.pid = ANY (pg_blocking_pids(a.pid))))`,
          [file.table],
        );
        readings.lockWaiters = waiters.rows[0].waiters;
      }
      if (pauseWhen.query) {
        const result = await client.query(pauseWhen.query);
        const first = result.rows[0] ? Object.values(result.rows[0] as Record<string, unknown>)[0] : false;
        readings.queryResult = first === true || first === 't';
      }
      return readings;
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
    }
  });
}

/** `55P03 lock timeout`, `22012`: the SQLSTATE, and its name where it has one. */
function sqlStateLabel(code: string | undefined): string {
  const name = describeSqlState(code);
  return code && name !== code ? `${code} ${name}` : name;
}

function statementTimeoutOf(file: Pick<BackfillSpec, 'targetBatchMs'>, config: DbChangeConfig): number {
  return Math.min(config.lockRetry.statementTimeoutMs, Math.max(MIN_STATEMENT_TIMEOUT_MS, file.targetBatchMs * STATEMENT_TIMEOUT_FACTOR));
}

function quoteTable(table: string): string {
  return table.split('.').map(quoteIdent).join('.');
}

async function pace(ms: number): Promise<void> {
  if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
}
