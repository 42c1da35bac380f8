// How a database step is retried after a transient error: bounded, and said where people look. Pure, shared by
// workflows (which set the retry policy) and activities (which announce each retry).
import { formatDuration } from './duration';

/** Temporal's backoff for a migration or change step after a deadlock, serialization failure or lost connection. */
export const TRANSIENT_RETRY = { initialIntervalMs: 500, backoffCoefficient: 2, maximumIntervalMs: 30_000 } as const;
/** lockRetry.maxAttempts: tries of one step in all, transient errors and workers that died included. */
export const DEFAULT_MAX_ATTEMPTS = 10;
/** lockRetry.statementTimeoutRetries: a statement that timed out once usually times out again on the same data. */
export const DEFAULT_STATEMENT_TIMEOUT_RETRIES = 1;
/** Failure types the workflows act on: the statement hit statement_timeout, or the step left an INVALID index. */
export const STATEMENT_TIMED_OUT = 'StatementTimedOut';
export const INVALID_INDEX_LEFT = 'InvalidIndexLeft';

/** Temporal's own cap on tries of a step, above any lockRetry.maxAttempts: it bounds tries the activity cannot count. */
export const MAX_ATTEMPTS_BACKSTOP = 101;

/** What a StatementTimedOut failure carries, so the workflow can bound its retries and advise. */
export interface StatementTimeoutDetails {
  statementTimeoutMs: number;
  statementTimeoutRetries: number;
}

/** One failed try that will be tried again: what the status shows until the next try ends. */
export interface RetryNotice {
  /** The try that failed (1-based) and how many there may be in all. */
  attempt: number;
  maxAttempts: number;
  /** The error with its SQLSTATE, e.g. "40P01 deadlock detected: …". */
  error: string;
  /** ISO time of the next try. */
  nextTryAt: string;
}

/** The pause after failed try `attempt` (1-based), as Temporal computes it from TRANSIENT_RETRY. */
export function retryDelayMs(attempt: number): number {
  const { initialIntervalMs, backoffCoefficient, maximumIntervalMs } = TRANSIENT_RETRY;
  return Math.min(initialIntervalMs * backoffCoefficient ** Math.max(attempt - 1, 0), maximumIntervalMs);
}

/** "try 1 of 2 failed: 57014 statement timeout: …; next try at 06:12:03 UTC" */
export function describeRetry(notice: RetryNotice): string {
  return `try ${notice.attempt} of ${notice.maxAttempts} failed: ${notice.error}; next try at ${notice.nextTryAt.slice(11, 19)} UTC`;
}

/** What a person can do about a statement that keeps timing out, for the block message. */
export function statementTimeoutAdvice(tries: number, statementTimeoutMs: number): string {
  return (
    `it hit statement_timeout (${formatDuration(statementTimeoutMs)}) on ${tries} ${tries === 1 ? 'try' : 'tries'} ` +
    `(lockRetry.statementTimeoutRetries allows ${tries - 1} ${tries - 1 === 1 ? 'retry' : 'retries'}); ` +
    'give it more time with a `-- dbchange:statement-timeout 2h` line in a migration that has not run anywhere yet ' +
    '(or raise lockRetry.statementTimeout where the worker runs and retry), or move the data change into a backfill'
  );
}
