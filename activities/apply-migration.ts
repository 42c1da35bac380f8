// Applies one post-deploy migration: under the applier lock, with short lock waits, exactly once.
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type pg from 'pg';
import { formatDuration } from '../core/duration';
import { concurrentIndexBuilds, type IndexBuild } from '../core/index-builds';
import { classifyPgError, describeSqlState, LOCK_NOT_AVAILABLE, type PgErrorFields } from '../core/pg-errors';
import type { MigrationFile } from '../core/migration-dir';
import type { MigrationOutcome } from '../core/pipeline';
import { lineAt, splitStatements, type SqlStatement } from '../core/sql-statements';
import { INVALID_INDEX_LEFT, STATEMENT_TIMED_OUT } from '../core/step-retries';
import { blockersGone, describeBlocker, watchBlockers, type BlockingSession } from './blockers';
import { ensureBookkeeping, inApplierTransaction, RELEASE_SESSION_APPLIER_LOCK_SQL, TAKE_SESSION_APPLIER_LOCK_SQL, LEDGER_TABLE, SCHEMA_MIGRATIONS_TABLE, withConnection } from './db';
import { dropStatement, findInvalidIndexes, newlyInvalid, type InvalidIndex } from './index-builds';
import { cancelOnStop, stoppedByPerson } from './stop';

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
  statementTimeoutRetries: number;
}

export interface ApplyContext {
  pool: pg.Pool;
  migration: MigrationFile;
  settings: ApplySettings;
  workflowId: string;
  /** The activity's cancellation: a person stopping the step cancels its SQL on the server. */
  stop: AbortSignal;
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
  const builds = migration.transactional ? [] : await concurrentIndexBuilds(statements);
  let lockRetries = 0;

  for (;;) {
    throwIfStopped(context);
    const client = await context.pool.connect();
    let broken = false;
    try {
      const attempt: Attempt = { client, context, statements, builds, startedAt, lockRetries };
      const outcome = migration.transactional ? await applyInTransaction(attempt) : await applyWithoutTransaction(attempt);
      return { ...outcome, durationMs: Date.now() - started };
    } catch (error) {
      if (stoppedByPerson(context.stop)) {
        broken = true;
        await recordOutcome(context, 'aborted', startedAt, lockRetries, 'stopped by a person while it ran: its SQL was cancelled and rolled back').catch(() => undefined);
        throw new CancelledFailure(`${migration.fileName}: stopped while it ran; its SQL was cancelled and rolled back`);
      }
      if (error instanceof ApplicationFailure) {
        await recordOutcome(context, 'failed', startedAt, lockRetries, error.message).catch(() => undefined);
        throw error;
      }
      if (!(error instanceof StatementError)) {
        broken = true;
        throw toActivityFailure(error as PgErrorFields & Error, context);
      }
      if (error.cause.code !== LOCK_NOT_AVAILABLE) {
        const kind = classifyPgError(error.cause);
        broken = kind === 'transient';
        const failure = toActivityFailure(error.cause, context, error.statement, await leftBehind(context, builds));
        if (!broken) await recordOutcome(context, 'failed', startedAt, lockRetries, `${error.cause.code ?? ''} ${error.cause.message}`.trim()).catch(() => undefined);
        throw failure;
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

function throwIfStopped(context: ApplyContext): void {
  if (stoppedByPerson(context.stop)) throw new StoppedError();
}

/** Thrown between statements once a person stopped the step; the loop above turns it into the cancellation. */
class StoppedError extends Error {}

/** This file's own statement timeout (`-- dbchange:statement-timeout`), else the project's. */
function statementTimeoutOf(context: ApplyContext): number {
  return context.migration.statementTimeoutMs ?? context.settings.statementTimeoutMs;
}

/** After a failed non-transactional migration: the INVALID indexes its builds left, so the message can name them. */
async function leftBehind(context: ApplyContext, builds: IndexBuild[]): Promise<InvalidIndex[]> {
  if (builds.length === 0) return [];
  return withConnection(context.pool, (client) => findInvalidIndexes(client, builds)).catch(() => []);
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
  /** The concurrent index builds of a non-transactional migration. */
  builds: IndexBuild[];
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
  const { client, context, builds } = attempt;
  await client.query(TAKE_SESSION_APPLIER_LOCK_SQL);
  try {
    await ensureBookkeeping(client);
    if (await isApplied(client, context.migration.version)) return outcomeOf(attempt, 'already-applied');
    // An interrupted concurrent build leaves an INVALID index that IF NOT EXISTS would skip: drop it, build again.
    const before = await findInvalidIndexes(client, builds);
    const leftovers = before.filter((index) => index.leftover);
    const drops = leftovers.map((index) => ({ sql: dropStatement(index), offset: 0 }));
    // Each statement commits on its own (CREATE INDEX CONCURRENTLY needs that), so the file must be idempotent.
    await runStatements(attempt, 'SET', [...drops, ...attempt.statements]);
    const invalid = newlyInvalid(before, await findInvalidIndexes(client, builds));
    if (invalid.length > 0) throw invalidIndexFailure(context, invalid);
    await inApplierTransaction(client, () => recordApplied(attempt));
    const note = leftovers.length > 0 ? `dropped INVALID ${leftovers.map((index) => index.name).join(', ')} left by an interrupted build, and built again` : undefined;
    return { ...outcomeOf(attempt, 'applied'), ...(note ? { note } : {}) };
  } finally {
    await client.query('RESET lock_timeout; RESET statement_timeout').catch(() => undefined);
    await client.query(RELEASE_SESSION_APPLIER_LOCK_SQL).catch(() => undefined);
  }
}

function invalidIndexFailure(context: ApplyContext, invalid: InvalidIndex[]): ApplicationFailure {
  const names = invalid.map((index) => index.name).join(', ');
  return ApplicationFailure.create({
    type: INVALID_INDEX_LEFT,
    nonRetryable: true,
    message: `${context.migration.fileName}: ran, but left INVALID index ${names} (maintained on every write, never used by reads); it is not recorded as applied: drop it (DROP INDEX CONCURRENTLY ${names}) or retry, which drops the indexes this file names and builds them again`,
    details: [{ version: context.migration.version, invalidIndexes: invalid.map((index) => index.name) }],
  });
}

/** Sets the short lock wait and the statement bound (for the transaction or the session), then runs each statement. */
async function runStatements(attempt: Attempt, set: 'SET' | 'SET LOCAL', statements = attempt.statements): Promise<void> {
  const { client, context } = attempt;
  await client.query(`${set} lock_timeout = ${Math.round(context.settings.lockTimeoutMs)}; ${set} statement_timeout = ${Math.round(statementTimeoutOf(context))}`);
  for (const statement of statements) {
    throwIfStopped(context);
    await runStatement(client, context, statement);
  }
}

async function runStatement(client: pg.PoolClient, context: ApplyContext, statement: SqlStatement): Promise<void> {
  const pid = (client as unknown as { processID: number }).processID;
  const watcher = watchBlockers(context.pool, pid);
  const cancelling = cancelOnStop(context.stop, context.pool, pid);
  try {
    await client.query(statement.sql);
    watcher.stop();
  } catch (error) {
    throw new StatementError(error as PgErrorFields & Error, statement, watcher.stop());
  } finally {
    cancelling.dispose();
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

/** A try that did not apply the migration, in the ledger: `failed` (with the error) or `aborted` by a person. */
async function recordOutcome(context: ApplyContext, outcome: 'failed' | 'aborted', startedAt: Date, lockRetries: number, error: string): Promise<void> {
  const { migration } = context;
  // Its own transaction: the migration's was rolled back, possibly with the ledger table it created.
  await withConnection(context.pool, (client) =>
    inApplierTransaction(client, () =>
      client.query(
        `INSERT INTO ${LEDGER_TABLE} (version, name, checksum, outcome, started_at, duration_ms, attempts, lock_retries, workflow_id, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [migration.version, migration.name, migration.checksum, outcome, startedAt, Date.now() - startedAt.getTime(), currentAttempt(), lockRetries, context.workflowId, error],
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
    if (Date.now() - started > context.settings.maxWaitMs || context.stop.aborted) return;
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

function toActivityFailure(error: PgErrorFields & Error, context: ApplyContext, statement?: SqlStatement, invalid: InvalidIndex[] = []): ApplicationFailure {
  const { migration } = context;
  const kind = classifyPgError(error);
  if (kind === 'transient') {
    return ApplicationFailure.create({
      type: TRANSIENT_DATABASE_ERROR,
      message: `${migration.fileName}: ${error.code ?? ''} ${describeSqlState(error.code)}: ${error.message}`,
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
    message: kind === 'statement-timeout' ? `${error.message} (statement_timeout ${formatDuration(statementTimeoutOf(context))})` : error.message,
    detail: error.detail,
    hint: error.hint,
    table: error.table,
    constraint: error.constraint,
    column: error.column,
  };
  const leftover = invalid.length > 0 ? `; it left INVALID index ${invalid.map((index) => index.name).join(', ')}, which a retry drops and builds again` : '';
  return ApplicationFailure.create({
    type: kind === 'statement-timeout' ? STATEMENT_TIMED_OUT : MIGRATION_FAILED,
    nonRetryable: true,
    message: `${formatFailure(details)}${leftover}`,
    details: [{ ...details, statementTimeoutMs: statementTimeoutOf(context), statementTimeoutRetries: context.settings.statementTimeoutRetries }],
  });
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
