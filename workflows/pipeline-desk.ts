// How a pipeline stops for a person: a step that fails blocks it, the block is shown and announced, and the person's
// decision (retry, mark-complete, abort) decides what runs next. Shared by the pipeline's stages.
import { ActivityFailure, ApplicationFailure, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { DbChangeActivities } from '../activities';
import type { Resolution, ResolveAction } from '../core/decisions';
import type { BackfillWakeups } from './backfill-wait';
import type { DecisionDesk } from './decision-desk';
import { countPipelineBlocked } from './metrics';
import { describeStepFailure } from './running-step';
import type { StatusBoard } from './status-board';

const { notify } = proxyActivities<DbChangeActivities>({ startToCloseTimeout: '30s', retry: { maximumAttempts: 3 } });

export const MIGRATION_ACTIONS: readonly ResolveAction[] = ['retry', 'mark-complete', 'abort'];
export const CHECK_ACTIONS: readonly ResolveAction[] = ['retry', 'abort'];

/** What every stage of a pipeline works with: its visible state and its human decisions. */
export interface PipelineRun {
  board: StatusBoard;
  desk: DecisionDesk;
  /** Waiting for `-- dbchange:requires-backfill`: the signals that wake it, and the first fallback interval. */
  backfills?: { wakeups: BackfillWakeups; recheckMs: number };
}

export async function announce(event: 'started' | 'environment-done' | 'wave-done' | 'blocked' | 'finished', text: string, environment?: string): Promise<void> {
  // A lost notification must not stop a database change.
  await notify({ event, text, workflowId: workflowInfo().workflowId, environment }).catch(() => undefined);
}

/**
 * Runs a step; a non-retryable failure blocks the pipeline until a person resolves it:
 * retry runs the step again, mark-complete runs `markComplete` instead, abort ends the pipeline.
 */
export async function resolvable<T>(
  run: PipelineRun,
  environment: string,
  actions: readonly ResolveAction[],
  step: () => Promise<T>,
  markComplete?: (user: string) => Promise<T>,
): Promise<T | undefined> {
  for (;;) {
    try {
      return await step();
    } catch (error) {
      if (!(error instanceof ActivityFailure)) throw error;
      const resolution = await block(run, environment, describeStepFailure(error), actions);
      if (resolution.action === 'mark-complete') return markComplete ? await markComplete(resolution.user) : undefined;
    }
  }
}

export async function block({ board, desk }: PipelineRun, environment: string, message: string, actions: readonly ResolveAction[]): Promise<Resolution> {
  board.block(environment, message, actions);
  countPipelineBlocked(environment);
  // Listen before notifying: a person who reacts to the notification at once must find the pipeline waiting.
  const decided = desk.waitForResolution(environment, actions);
  await announce('blocked', `${board.title()} is blocked on ${environment}: ${message}`, environment);
  const resolution = await decided;
  if (resolution.action === 'abort') return endAborted(board, environment, resolution, message);
  board.resume(environment, `${resolution.action} by ${resolution.user} on ${environment}`);
  return resolution;
}

/** A person's abort ends the pipeline: nothing more is applied, and the status says who and why. */
export async function endAborted(board: StatusBoard, environment: string, resolution: Resolution, message: string): Promise<never> {
  const why = resolution.comment ? ` ("${resolution.comment}")` : '';
  board.finish('aborted', `aborted by ${resolution.user}${why} on ${environment}: ${message}`);
  await announce('finished', `${board.title()} aborted by ${resolution.user} on ${environment}`);
  throw ApplicationFailure.create({ type: 'PipelineAborted', nonRetryable: true, message: `aborted by ${resolution.user}: ${message}`, details: [board.snapshot()] });
}
