// Applies one post-deploy migration: under the applier lock, with short lock waits, exactly once.
import { ApplicationFailure, Context } from '@temporalio/activity';
import type pg from 'pg';
import { classifyPgError, describeSqlState, LOCK_NOT_AVAILABLE, type PgErrorFields } from '../core/pg-errors';
import type { MigrationFile } from '../core/migration-dir';
import type { MigrationOutcome } from '../core/pipeline';
import { lineAt, splitStatements, type SqlStatement } from '../core/sql-statements';
import { blockersGone, describeBlocker, watchBlockers, type BlockingSession } from './blockers';
import { APPLIER_LOCK_KEY, ensureBookkeeping, inApplierTransaction, LEDGER_TABLE, SCHEMA_MIGRATIONS_TABLE, withConnection } from './db';

export const MIGRATION_FAILED = 'MigrationFailed';
export const TRANSIENT_DATABASE_ERROR = 'TransientDatabaseError';
export const LOCK_WAIT_EXCEEDED = 'LockWaitExceeded';

const BLOCKER_POLL_MS = 50;
const UNKNOWN_BLOCKER_BACKOFF_MS = 250;
const HEARTBEAT_EVERY_MS = 1_000;
/** Progress signals land in workflow history: one at once, then a refresh now and then, not every second. */
const SIGNAL_EVERY_MS = 15_000;

export interface ApplySettings {
  lockTimeoutMs: number;
  statementTimeoutMs: number;
  maxWaitMs: number;
}

export interface ApplyContext {
  pool: pg.Pool;
  migration: MigrationFile;
  settings: ApplySettings;
  workflowId: string;
  /** Called while waiting on a blocker, and with undefined once the wait is over. */
  onWaiting(blocker: string | undefined): Promise<void>;
  /** Called each time a statement hit lock_timeout and the migration will be tried again. */
  onLockRetry?(): void;
}

/** What the failing statement was and where it is in the file, for the person who has to fix it. */
export interface MigrationFailureDetails extends PgErrorFields {
  version: string;
  file: string;
  line: number;
  statement: string;
}

class StatementError extends Error {
  constructor(
    readonly cause: PgErrorFields & Error,
    readonly statement: SqlStatement,
    readonly blockers: BlockingSession[],
  ) {
    super(cause.message);
  }
}

export async function applyMigrationOnce(context: ApplyContext): Promise<MigrationOutcome> {
  const { migration, settings } = context;
  const started = Date.now();
  const startedAt = new Date(started);
  const statements = await parseStatements(migration);
  let lockRetries = 0;

  for (;;) {
    const client = await context.pool.connect();
    let broken = false;
    try {
      const attempt: Attempt = { client, context, statements, startedAt, lockRetries };
      const outcome = migration.transactional ? await applyInTransaction(attempt) : await applyWithoutTransaction(attempt);
      return { ...outcome, durationMs: Date.now() - started };
    } catch (error) {
      if (!(error instanceof StatementError)) {
        broken = true;
        throw toActivityFailure(error as PgErrorFields & Error, migration);
      }
      if (error.cause.code !== LOCK_NOT_AVAILABLE) {
        broken = classifyPgError(error.cause) === 'transient';
        if (!broken) await recordFailure(context, error, startedAt, lockRetries).catch(() => undefined);
        throw toActivityFailure(error.cause, migration, error.statement);
      }
      lockRetries++;
      context.onLockRetry?.();
      if (Date.now() - started > settings.maxWaitMs) {
        throw ApplicationFailure.create({
          type: LOCK_WAIT_EXCEEDED,
          nonRetryable: true,
          message: `${migration.fileName}: still waiting for locks after ${Math.round(settings.maxWaitMs / 1000)}s (lockRetry.maxWait)`,
          details: [{ version: migration.version, blockers: error.blockers }],
        });
      }
      await waitForBlockers(context, error.blockers, started);
    } finally {
      client.release(broken);
    }
  }
}

async function parseStatements(migration: MigrationFile): Promise<SqlStatement[]> {
  try {
    return await splitStatements(migration.up);
  } catch (error) {
    const cursor = (error as { sqlDetails?: { cursorPosition?: number } }).sqlDetails?.cursorPosition ?? 0;
    const line = lineAt(migration.up, cursor, migration.upStartLine);
    throw ApplicationFailure.create({
      type: MIGRATION_FAILED,
      nonRetryable: true,
      message: `${migration.fileName}:${line}: ${(error as Error).message}`,
      details: [{ version: migration.version, file: migration.fileName, line, message: (error as Error).message, statement: '' }],
    });
  }
}

/** One try at a migration on one connection; lock-timeout retries make new attempts. */
interface Attempt {
  client: pg.PoolClient;
  context: ApplyContext;
  statements: SqlStatement[];
  startedAt: Date;
  lockRetries: number;
}

async function applyInTransaction(attempt: Attempt): Promise<Omit<MigrationOutcome, 'durationMs'>> {
  const { client, context } = attempt;
  return inApplierTransaction(client, async () => {
    if (await isApplied(client, context.migration.version)) return outcomeOf(attempt, 'already-applied');
    await runStatements(attempt, 'SET LOCAL');
    await recordApplied(attempt);
    return outcomeOf(attempt, 'applied');
  });
}

async function applyWithoutTransaction(attempt: Attempt): Promise<Omit<MigrationOutcome, 'durationMs'>> {
  const { client, context } = attempt;
  await client.query('SELECT pg_advisory_lock($1)', [APPLIER_LOCK_KEY]);
  try {
    await ensureBookkeeping(client);
    if (await isApplied(client, context.migration.version)) return outcomeOf(attempt, 'already-applied');
    // Each statement commits on its own (CREATE INDEX CONCURRENTLY needs that), so the file must be idempotent.
    await runStatements(attempt, 'SET');
    await inApplierTransaction(client, () => recordApplied(attempt));
    return outcomeOf(attempt, 'applied');
  } finally {
    await client.query('RESET lock_timeout; RESET statement_timeout').catch(() => undefined);
    await client.query('SELECT pg_advisory_unlock($1)', [APPLIER_LOCK_KEY]).catch(() => undefined);
  }
}

/** Sets the short lock wait and the statement bound (for the transaction or the session), then runs each statement. */
async function runStatements(attempt: Attempt, set: 'SET' | 'SET LOCAL'): Promise<void> {
  const { client, context } = attempt;
  await client.query(`${set} lock_timeout = ${Math.round(context.settings.lockTimeoutMs)}`);
  await client.query(`${set} statement_timeout = ${Math.round(context.settings.statementTimeoutMs)}`);
  for (const statement of attempt.statements) await runStatement(client, context, statement);
}

async function runStatement(client: pg.PoolClient, context: ApplyContext, statement: SqlStatement): Promise<void> {
  const pid = (client as unknown as { processID: number }).processID;
  const watcher = watchBlockers(context.pool, pid);
  try {
    await client.query(statement.sql);
    watcher.stop();
  } catch (error) {
    throw new StatementError(error as PgErrorFields & Error, statement, watcher.stop());
  }
}

async function isApplied(client: pg.PoolClient, version: string): Promise<boolean> {
  const result = await client.query(`SELECT 1 FROM ${SCHEMA_MIGRATIONS_TABLE} WHERE version = $1`, [version]);
  return (result.rowCount ?? 0) > 0;
}

async function recordApplied({ client, context, startedAt, lockRetries }: Attempt): Promise<void> {
  const { migration } = context;
  await client.query(`INSERT INTO ${SCHEMA_MIGRATIONS_TABLE} (version) VALUES ($1)`, [migration.version]);
  await client.query(
    `INSERT INTO ${LEDGER_TABLE} (version, name, checksum, outcome, started_at, duration_ms, attempts, lock_retries, workflow_id)
     VALUES ($1, $2, $3, 'applied', $4, $5, $6, $7, $8)`,
    [migration.version, migration.name, migration.checksum, startedAt, Date.now() - startedAt.getTime(), currentAttempt(), lockRetries, context.workflowId],
  );
}

async function recordFailure(context: ApplyContext, error: StatementError, startedAt: Date, lockRetries: number): Promise<void> {
  const { migration } = context;
  // Its own transaction: the migration's was rolled back, possibly with the ledger table it created.
  await withConnection(context.pool, (client) =>
    inApplierTransaction(client, () =>
      client.query(
        `INSERT INTO ${LEDGER_TABLE} (version, name, checksum, outcome, started_at, duration_ms, attempts, lock_retries, workflow_id, error)
         VALUES ($1, $2, $3, 'failed', $4, $5, $6, $7, $8, $9)`,
        [migration.version, migration.name, migration.checksum, startedAt, Date.now() - startedAt.getTime(), currentAttempt(), lockRetries, context.workflowId, `${error.cause.code ?? ''} ${error.cause.message}`.trim()],
      ),
    ),
  );
}

/** Waits until the sessions that blocked us have ended their transactions, then returns at once. */
async function waitForBlockers(context: ApplyContext, blockers: BlockingSession[], started: number): Promise<void> {
  if (blockers.length === 0) {
    // The blocker let go before the watcher saw it: a short pause, then try again.
    await sleep(UNKNOWN_BLOCKER_BACKOFF_MS);
    return;
  }
  const description = blockers.map(describeBlocker).join('; ');
  let lastHeartbeat = 0;
  let lastSignal = 0;
  const waitStarted = Date.now();
  while (!(await blockersGone(context.pool, blockers))) {
    if (Date.now() - started > context.settings.maxWaitMs) return;
    const waited = Math.round((Date.now() - waitStarted) / 1000);
    if (Date.now() - lastHeartbeat >= HEARTBEAT_EVERY_MS) {
      lastHeartbeat = Date.now();
      Context.current().heartbeat({ version: context.migration.version, waitedSeconds: waited, waitingFor: blockers });
    }
    if (Date.now() - lastSignal >= SIGNAL_EVERY_MS) {
      lastSignal = Date.now();
      await context.onWaiting(`waiting for ${description} (waited ${waited}s)`).catch(() => undefined);
    }
    await sleep(BLOCKER_POLL_MS);
  }
  if (lastSignal > 0) await context.onWaiting(undefined).catch(() => undefined);
}

function toActivityFailure(error: PgErrorFields & Error, migration: MigrationFile, statement?: SqlStatement): ApplicationFailure {
  if (classifyPgError(error) === 'transient') {
    return ApplicationFailure.create({
      type: TRANSIENT_DATABASE_ERROR,
      message: `${migration.fileName}: ${describeSqlState(error.code)}: ${error.message}`,
      details: [{ version: migration.version, code: error.code }],
    });
  }
  const offset = statement ? statement.offset + Math.max(Number(error.position ?? 1) - 1, 0) : 0;
  const details: MigrationFailureDetails = {
    version: migration.version,
    file: migration.fileName,
    line: lineAt(migration.up, offset, migration.upStartLine),
    statement: statement?.sql.slice(0, 500) ?? '',
    code: error.code,
    message: error.message,
    detail: error.detail,
    hint: error.hint,
    table: error.table,
    constraint: error.constraint,
    column: error.column,
  };
  return ApplicationFailure.create({ type: MIGRATION_FAILED, nonRetryable: true, message: formatFailure(details), details: [details] });
}

/** `20230109_x.sql:12: ERROR 23503: insert … violates foreign key "fk" (detail: …; hint: …)` */
export function formatFailure(details: MigrationFailureDetails): string {
  const extras = [details.detail && `detail: ${details.detail}`, details.hint && `hint: ${details.hint}`].filter(Boolean);
  return `${details.file}:${details.line}: ERROR ${details.code ?? ''}: ${details.message}${extras.length ? ` (${extras.join('; ')})` : ''}`;
}

function outcomeOf({ context: { migration }, lockRetries }: Attempt, outcome: MigrationOutcome['outcome']): Omit<MigrationOutcome, 'durationMs'> {
  return { version: migration.version, name: migration.name, outcome, attempts: currentAttempt(), lockRetries };
}

function currentAttempt(): number {
  return Context.current().info.attempt;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
