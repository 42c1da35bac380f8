// Runs a change request's steps on one database: SQL steps exactly once (recorded in the change ledger in the
// same transaction), checks read-only, and the dry run inside a transaction that is always rolled back.
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type pg from 'pg';
import type { ChangeStep, CheckStep, SqlStep } from '../core/change-request';
import { evaluateExpectation, shouldRun, stepLabel, type CheckResults, type LockSettings, type Phase } from '../core/change-steps';
import { formatDuration } from '../core/duration';
import { classifyPgError, describeSqlState, type PgErrorFields } from '../core/pg-errors';
import { lineAt, splitStatements } from '../core/sql-statements';
import { STATEMENT_TIMED_OUT } from '../core/step-retries';
import { TRANSIENT_DATABASE_ERROR } from './apply-migration';
import { blockersGone, describeBlocker, watchBlockers, type BlockingSession } from './blockers';
import { CHANGE_LOG_TABLE, inApplierTransaction } from './db';
import { cancelOnStop, stoppedByPerson } from './stop';

export const CHANGE_STEP_FAILED = 'ChangeStepFailed';

/** Which run of which change a step belongs to: the ledger key that makes a retried step a no-op. */
export interface StepRun {
  changeId: string;
  checksum: string;
  environment: string;
  phase: Phase;
  workflowId: string;
  runId: string;
}

/** How a running SQL step is steered from outside: a person's stop, the retry setting, and whom it waits for. */
export interface StepControl {
  stop: AbortSignal;
  statementTimeoutRetries: number;
  /** Called while the step waits for a blocking session, and with undefined once the wait is over. */
  onWaiting(waitingFor: string | undefined): Promise<void>;
}

export interface SqlStepResult {
  outcome: 'applied' | 'already-applied';
  durationMs: number;
  attempt: number;
  /** Tries within this attempt that timed out on a lock and waited for the blocking session to finish. */
  lockRetries: number;
}

export interface CheckResult {
  passed: boolean;
  /** What the query returned, against what was expected. */
  observed: string;
  durationMs: number;
}

/** A statement failed; `blockers` are the sessions seen blocking it, so a lock timeout can wait for them to end. */
class StatementFailed extends Error {
  constructor(
    readonly failure: ApplicationFailure,
    readonly blockers: BlockingSession[],
  ) {
    super(failure.message);
  }
}

const BLOCKER_POLL_MS = 50;
const HEARTBEAT_EVERY_MS = 1_000;
/** Progress reports land in workflow history: one at once, then a refresh now and then. */
const REPORT_EVERY_MS = 15_000;

/**
 * Runs an SQL step once. A lock or statement timeout caused by a session we saw is retried here, the moment that
 * session's transaction ends (within lockRetry.maxWait); other transient errors are retried by Temporal.
 */
export async function runSqlStep(pool: pg.Pool, run: StepRun, step: SqlStep, settings: LockSettings, control: StepControl): Promise<SqlStepResult> {
  const started = Date.now();
  let lockRetries = 0;
  for (;;) {
    const client = await pool.connect();
    let broken = false;
    try {
      const statements: StepStatements = { client, pool, step, settings, control };
      const outcome = step.transaction ? await runInTransaction(statements, run) : await runWithoutTransaction(statements, run);
      return { outcome, durationMs: Date.now() - started, attempt: Context.current().info.attempt, lockRetries };
    } catch (error) {
      if (stoppedByPerson(control.stop)) {
        broken = true;
        throw new CancelledFailure(`step ${step.id}: stopped while it ran; its SQL was cancelled and rolled back`);
      }
      if (!(error instanceof StatementFailed)) throw error;
      broken = error.failure.nonRetryable !== true;
      if (!broken || error.blockers.length === 0 || Date.now() - started > settings.maxWaitMs) throw error.failure;
      await waitForBlockersToEnd(pool, error.blockers, started + settings.maxWaitMs, control);
      lockRetries++;
    } finally {
      client.release(broken);
    }
  }
}

async function waitForBlockersToEnd(pool: pg.Pool, blockers: BlockingSession[], deadline: number, control: StepControl): Promise<void> {
  const waitStarted = Date.now();
  const description = blockers.map(describeBlocker).join('; ');
  let lastHeartbeat = 0;
  let lastReport = 0;
  while (Date.now() < deadline && !control.stop.aborted && !(await blockersGone(pool, blockers))) {
    if (Date.now() - lastHeartbeat >= HEARTBEAT_EVERY_MS) {
      lastHeartbeat = Date.now();
      Context.current().heartbeat({ waitingFor: blockers.map(describeBlocker) });
    }
    if (Date.now() - lastReport >= REPORT_EVERY_MS) {
      lastReport = Date.now();
      await control.onWaiting(`waiting for ${description} (waited ${Math.round((Date.now() - waitStarted) / 1000)}s)`).catch(() => undefined);
    }
    await new Promise((resolve) => setTimeout(resolve, BLOCKER_POLL_MS));
  }
  if (lastReport > 0) await control.onWaiting(undefined).catch(() => undefined);
}

/** One try of a step's statements on one connection. */
interface StepStatements {
  client: pg.PoolClient;
  pool: pg.Pool;
  step: SqlStep;
  settings: LockSettings;
  control?: StepControl;
}

async function runInTransaction(attempt: StepStatements, run: StepRun): Promise<SqlStepResult['outcome']> {
  const { client, settings } = attempt;
  return inApplierTransaction(client, async () => {
    if (await alreadyApplied(client, run, attempt.step)) return 'already-applied';
    await client.query(`SET LOCAL lock_timeout = ${Math.round(settings.lockTimeoutMs)}`);
    await client.query(`SET LOCAL statement_timeout = ${Math.round(settings.statementTimeoutMs)}`);
    await runStepStatements(attempt);
    await recordApplied(client, run, attempt.step);
    return 'applied';
  });
}

async function runWithoutTransaction(attempt: StepStatements, run: StepRun): Promise<SqlStepResult['outcome']> {
  const { client, settings } = attempt;
  if (await inApplierTransaction(client, () => alreadyApplied(client, run, attempt.step))) return 'already-applied';
  // Each statement commits on its own, so the step must be idempotent: a retry runs all of it again.
  await client.query(`SET lock_timeout = ${Math.round(settings.lockTimeoutMs)}; SET statement_timeout = ${Math.round(settings.statementTimeoutMs)}`);
  try {
    await runStepStatements(attempt);
  } finally {
    await client.query('RESET lock_timeout; RESET statement_timeout').catch(() => undefined);
  }
  await inApplierTransaction(client, () => recordApplied(client, run, attempt.step));
  return 'applied';
}

/** LOCK TABLE in the given order, then each statement; every error names the step, the file line and the blocker. */
async function runStepStatements(attempt: StepStatements): Promise<void> {
  const { step } = attempt;
  for (const table of step.lockTables) await runWatched(attempt, `LOCK TABLE ${table}`, step.line);
  const statements = await splitStatements(step.sql);
  for (const statement of statements) {
    await runWatched(attempt, statement.sql, lineAt(step.sql, statement.offset, step.sqlLine));
  }
}

async function runWatched({ client, pool, step, settings, control }: StepStatements, sql: string, line: number): Promise<void> {
  const pid = (client as unknown as { processID: number }).processID;
  if (control && stoppedByPerson(control.stop)) throw new Error(`step ${step.id}: stopped`);
  const watcher = watchBlockers(pool, pid);
  const cancelling = control ? cancelOnStop(control.stop, pool, pid) : undefined;
  try {
    await client.query(sql);
    watcher.stop();
  } catch (error) {
    const blockers = watcher.stop();
    const timeouts = { statementTimeoutMs: settings.statementTimeoutMs, statementTimeoutRetries: control?.statementTimeoutRetries ?? 0 };
    throw new StatementFailed(stepFailure(error as PgErrorFields & Error, step, line, blockers.map(describeBlocker).join('; '), timeouts), blockers);
  } finally {
    cancelling?.dispose();
  }
}

/** Transient errors are retried by Temporal; a statement timeout by the workflow, a bounded number of times; anything else stops the change for a person. */
function stepFailure(error: PgErrorFields & Error, step: ChangeStep, line: number, blockedBy = '', timeouts?: { statementTimeoutMs: number; statementTimeoutRetries: number }): ApplicationFailure {
  const extras = [error.detail && `detail: ${error.detail}`, error.hint && `hint: ${error.hint}`].filter(Boolean);
  const where = `step ${step.id} (line ${line})`;
  const kind = classifyPgError(error);
  if (kind === 'transient') {
    return ApplicationFailure.create({
      type: TRANSIENT_DATABASE_ERROR,
      message: `${where}: ${error.code ?? ''} ${describeSqlState(error.code)}: ${error.message}${blockedBy ? `; blocked by ${blockedBy}` : ''}`,
      details: [{ step: step.id, code: error.code }],
    });
  }
  if (kind === 'statement-timeout' && timeouts) {
    return ApplicationFailure.create({
      type: STATEMENT_TIMED_OUT,
      nonRetryable: true,
      message: `${where}: ERROR ${error.code}: ${error.message} (statement_timeout ${formatDuration(timeouts.statementTimeoutMs)})${blockedBy ? `; blocked by ${blockedBy}` : ''}`,
      details: [{ step: step.id, line, code: error.code, ...timeouts }],
    });
  }
  return ApplicationFailure.create({
    type: CHANGE_STEP_FAILED,
    nonRetryable: true,
    message: `${where}: ERROR ${error.code ?? ''}: ${error.message}${extras.length ? ` (${extras.join('; ')})` : ''}`,
    details: [{ step: step.id, line, code: error.code, message: error.message, detail: error.detail }],
  });
}

async function alreadyApplied(client: pg.PoolClient, run: StepRun, step: SqlStep): Promise<boolean> {
  const found = await client.query(`SELECT 1 FROM ${CHANGE_LOG_TABLE} WHERE run_id = $1 AND environment = $2 AND phase = $3 AND step_id = $4`, [
    run.runId,
    run.environment,
    run.phase,
    step.id,
  ]);
  return (found.rowCount ?? 0) > 0;
}

async function recordApplied(client: pg.PoolClient, run: StepRun, step: SqlStep): Promise<void> {
  await client.query(
    `INSERT INTO ${CHANGE_LOG_TABLE} (change_id, checksum, environment, phase, step_id, attempts, workflow_id, run_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [run.changeId, run.checksum, run.environment, run.phase, step.id, Context.current().info.attempt, run.workflowId, run.runId],
  );
}

/** Runs a check in a read-only transaction, bounded by the statement timeout. */
export async function runCheckStep(pool: pg.Pool, step: CheckStep, settings: LockSettings): Promise<CheckResult> {
  const started = Date.now();
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN READ ONLY');
    try {
      await client.query(`SET LOCAL statement_timeout = ${Math.round(settings.statementTimeoutMs)}`);
      const result = await queryCheck(client, step);
      await client.query('COMMIT');
      return { ...result, durationMs: Date.now() - started };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  } catch (error) {
    broken = true;
    if (error instanceof ApplicationFailure) throw error;
    throw stepFailure(error as PgErrorFields & Error, step, step.queryLine);
  } finally {
    client.release(broken);
  }
}

async function queryCheck(client: pg.PoolClient, step: CheckStep): Promise<Omit<CheckResult, 'durationMs'>> {
  const result = await client.query({ text: step.query, rowMode: 'array' });
  const first = (result.rows[0] as unknown[] | undefined)?.[0];
  return evaluateExpectation(step.expect, { rowCount: result.rowCount ?? result.rows.length, firstValue: first === undefined || first === null ? null : String(first) });
}

export interface RehearsedStep {
  phase: Phase;
  id: string;
  kind: ChangeStep['kind'];
  outcome: 'rehearsed' | 'passed' | 'failed' | 'skipped' | 'not-rehearsed';
  durationMs: number;
  /** Locks the step took, e.g. "AccessExclusiveLock on ci_runner_machines". */
  locks: string[];
  note?: string;
}

export interface RehearsalReport {
  environment: string;
  steps: RehearsedStep[];
  /** The error that ended the rehearsal early, if any. */
  error?: string;
}

/**
 * Runs the plan, then its rollback, inside one transaction that is always rolled back: each step sees the ones
 * before it, and the locks each step took are read from pg_locks before the next runs. Nothing is committed.
 */
export async function rehearseSteps(
  /** The step's database; `label` names it in the locks when the environment has several. */
  databaseOf: (step: ChangeStep) => { pool: pg.Pool; label?: string },
  environment: string,
  phases: { phase: Phase; steps: ChangeStep[] }[],
  settingsOf: (step: ChangeStep) => LockSettings,
): Promise<RehearsalReport> {
  const report: RehearsalReport = { environment, steps: [] };
  // One rolled-back transaction per database the steps touch (an environment may have several, e.g. main and ci).
  const sessions = new Map<pg.Pool, { client: pg.PoolClient; held: string[] }>();
  const sessionFor = async (pool: pg.Pool) => {
    let session = sessions.get(pool);
    if (!session) {
      const client = await pool.connect();
      session = { client, held: [] };
      sessions.set(pool, session);
      await client.query('BEGIN');
      session.held = await locksHeld(client);
    }
    return session;
  };
  try {
    for (const { phase, steps } of phases) {
      const checks: CheckResults = {};
      for (const step of steps) {
        const skip = (outcome: RehearsedStep['outcome'], note: string) => report.steps.push({ phase, id: step.id, kind: step.kind, outcome, durationMs: 0, locks: [], note });
        if (report.error) skip('not-rehearsed', 'an earlier step failed');
        else if (!shouldRun(step, checks)) skip('skipped', `runs only if ${step.when!.check} ${step.when!.outcome}`);
        else if (step.kind === 'approval') skip('not-rehearsed', `waits for approval by ${step.roles.join(' or ')}`);
        else if (step.kind === 'sql' && !step.transaction) skip('not-rehearsed', 'transaction: false cannot be rolled back');
        else {
          const started = Date.now();
          try {
            const { pool, label } = databaseOf(step);
            const session = await sessionFor(pool);
            const { client } = session;
            const settings = settingsOf(step);
            await client.query(`SET LOCAL lock_timeout = ${Math.round(settings.lockTimeoutMs)}; SET LOCAL statement_timeout = ${Math.round(settings.statementTimeoutMs)}`);
            const check = step.kind === 'sql' ? await runStepStatements({ client, pool, step, settings }) : await queryCheck(client, step);
            if (check) checks[step.id] = check.passed ? 'passed' : 'failed';
            const now = await locksHeld(client);
            const outcome = !check ? 'rehearsed' : check.passed ? 'passed' : 'failed';
            const on = label ? `${label}: ` : '';
            report.steps.push({ phase, id: step.id, kind: step.kind, outcome, durationMs: Date.now() - started, locks: now.filter((lock) => !session.held.includes(lock)).map((lock) => `${on}${lock}`), note: check?.observed });
            session.held = now;
          } catch (error) {
            const message = error instanceof StatementFailed ? error.failure.message : error instanceof Error ? error.message : String(error);
            report.steps.push({ phase, id: step.id, kind: step.kind, outcome: 'failed', durationMs: Date.now() - started, locks: [], note: message });
            report.error = `${phase} ${stepLabel(step)}: ${message}`;
          }
        }
      }
    }
  } finally {
    for (const { client } of sessions.values()) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release();
    }
  }
  return report;
}

/** The relation locks this session holds, in words. */
async function locksHeld(client: pg.PoolClient): Promise<string[]> {
  const result = await client.query<{ lock: string }>(
    `SELECT DISTINCT l.mode || ' on ' || c.relname AS lock
       FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
      WHERE l.pid = pg_backend_pid() AND l.granted AND l.locktype = 'relation'
        AND c.relnamespace <> 'pg_catalog'::regnamespace AND c.relname NOT LIKE 'pg\\_%'
      ORDER BY 1`,
  );
  return result.rows.map((row) => row.lock);
}
