// Running one database step from a workflow: a person can stop it while it runs, a statement timeout is retried a
// bounded number of times, and a failure reads the way a person needs it. Shared by pipelines and change requests.
import { ActivityFailure, ApplicationFailure, CancellationScope, sleep, type RetryPolicy } from '@temporalio/workflow';
import type { Resolution } from '../core/decisions';
import { MAX_ATTEMPTS_BACKSTOP, retryDelayMs, statementTimeoutAdvice, STATEMENT_TIMED_OUT, TRANSIENT_RETRY, type RetryNotice, type StatementTimeoutDetails } from '../core/step-retries';
import type { DecisionDesk } from './decision-desk';

/**
 * Temporal retries a step after transient errors with this backoff. The activity itself stops at the configured
 * lockRetry.maxAttempts (it knows the config); this cap only bounds tries that end without it, e.g. a worker killed.
 */
export function transientRetryPolicy(nonRetryableErrorTypes: string[] = []): RetryPolicy {
  const { initialIntervalMs, backoffCoefficient, maximumIntervalMs } = TRANSIENT_RETRY;
  return { initialInterval: initialIntervalMs, backoffCoefficient, maximumInterval: maximumIntervalMs, maximumAttempts: MAX_ATTEMPTS_BACKSTOP, nonRetryableErrorTypes };
}

/** Done, or stopped by a person (with what it finished first, or how the stop ended it). */
export type StoppableResult<T> = { done: T; stopped?: undefined } | { stopped: Resolution; done?: T; failure?: unknown };

/**
 * Runs `step` (an activity) while accepting `resolve --action abort`: the activity is cancelled, which cancels
 * its SQL on the server, and this returns once it has rolled back. A step that finished first reports `done` too.
 */
export async function runStoppable<T>(desk: DecisionDesk, environment: string, step: () => Promise<T>): Promise<StoppableResult<T>> {
  const offer = desk.offerStop(environment);
  const scope = new CancellationScope();
  const running = scope.run(step);
  try {
    await Promise.race([running.catch(() => undefined), offer.decided]);
    const stop = offer.decision();
    if (!stop) return { done: await running };
    scope.cancel();
    const finished = await running.then((done) => ({ done }), (failure: unknown) => ({ failure }));
    return { stopped: stop, ...finished };
  } finally {
    offer.withdraw();
  }
}

/**
 * Runs `step` again after a statement timeout, at most lockRetry.statementTimeoutRetries times (the activity's
 * failure carries the setting), telling `onRetry` when; other failures are thrown.
 */
export async function retryStatementTimeouts<T>(onRetry: (notice: RetryNotice) => void, step: () => Promise<T>): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await step();
    } catch (error) {
      const timedOut = timeoutFailure(error);
      const retries = timedOut ? timeoutDetails(timedOut).statementTimeoutRetries : 0;
      if (!timedOut || tries > retries) throw error;
      const delayMs = retryDelayMs(tries);
      onRetry({ attempt: tries, maxAttempts: retries + 1, error: timedOut.message, nextTryAt: new Date(Date.now() + delayMs).toISOString() });
      await sleep(delayMs);
    }
  }
}

function timeoutFailure(error: unknown): ApplicationFailure | undefined {
  const cause = error instanceof ActivityFailure ? error.cause : undefined;
  return cause instanceof ApplicationFailure && cause.type === STATEMENT_TIMED_OUT ? cause : undefined;
}

function timeoutDetails(failure: ApplicationFailure): StatementTimeoutDetails {
  const [details] = (failure.details ?? []) as Partial<StatementTimeoutDetails>[];
  return { statementTimeoutMs: details?.statementTimeoutMs ?? 0, statementTimeoutRetries: details?.statementTimeoutRetries ?? 0 };
}

/** A failed step's error as the block shows it: for a statement that keeps timing out, also what to do about it. */
export function describeStepFailure(error: ActivityFailure): string {
  const message = error.cause?.message ?? error.message;
  const timedOut = timeoutFailure(error);
  if (!timedOut) return message;
  const { statementTimeoutMs, statementTimeoutRetries } = timeoutDetails(timedOut);
  return `${message}; ${statementTimeoutAdvice(statementTimeoutRetries + 1, statementTimeoutMs)}`;
}
