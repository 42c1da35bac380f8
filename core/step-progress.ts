// What a running step tells its workflow while it waits or retries: defined once here, because the activities
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
