// Tells the workflow running this activity what its step waits for, or that a try failed and when the next comes.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { stepProgress, type StepProgress } from '../core/step-progress';
import { retryDelayMs } from '../core/step-retries';

/** A lost report must not fail the step: the status is advisory, the step's outcome is what counts. */
export async function reportProgress(progress: StepProgress): Promise<void> {
  const context = Context.current();
  const workflow = context.info.workflowExecution;
  if (!workflow) return;
  await context.client.workflow.getHandle(workflow.workflowId, workflow.runId).signal(stepProgress, progress).catch(() => undefined);
}

/**
 * Before a failure leaves the activity. A retryable one is announced (which try failed, when the next comes); on
 * the last of lockRetry.maxAttempts tries it becomes non-retryable, so the workflow blocks with it instead.
 */
export async function settleFailure(step: string, failure: unknown, maxAttempts: number): Promise<unknown> {
  if (!(failure instanceof ApplicationFailure) || failure.nonRetryable) return failure;
  const { attempt } = Context.current().info;
  if (attempt >= maxAttempts) {
    return ApplicationFailure.create({
      type: failure.type ?? undefined,
      nonRetryable: true,
      message: `${failure.message} (gave up after ${attempt} tries: lockRetry.maxAttempts)`,
      details: failure.details ? [...failure.details] : undefined,
    });
  }
  const nextTryAt = new Date(Date.now() + retryDelayMs(attempt)).toISOString();
  await reportProgress({ step, retry: { attempt, maxAttempts, error: failure.message, nextTryAt } });
  return failure;
}
