// What a running step or a production-checks wait tells its workflow: defined once here, because the activities
// send it and the workflows receive it, and activities must not import workflows.
import { defineSignal } from '@temporalio/workflow';
import type { RetryNotice } from './step-retries';

export interface StepProgress {
  /** The migration version or the change step id this is about; stale reports for another step are ignored. */
  step: string;
  /** Whom the step waits for (a blocking session), or undefined once the wait is over. */
  waitingFor?: string;
  /** A failed try that will be tried again. */
  retry?: RetryNotice;
}

export const stepProgress = defineSignal<[StepProgress]>('stepProgress');

/** Why production checks still hold a wait, sent when the reasons change; `wait` tells one wait from an earlier one. */
export interface HoldProgress {
  wait: string;
  why: string;
}

export const holdProgress = defineSignal<[HoldProgress]>('holdProgress');
