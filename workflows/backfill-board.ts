// A backfill's visible state: the `status` query, the UI's current details, search attributes and metrics, all
// from one compact state that continue-as-new carries.
import { upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { type BackfillProgress, type BackfillState, type PauseReason } from '../core/backfill';
import { describeBackfillStatus, KEPT_DECISIONS, progressOf, type BackfillCarried, type BackfillInput, type BackfillStatus } from '../core/backfill-status';
import type { DecisionRecord, ResolveAction } from '../core/decisions';
import type { RetryNotice } from '../core/step-retries';
import { KIND } from '../core/search-attributes';
import { recordBackfillProgress } from './metrics';
import { Visibility } from './visibility';

export class BackfillBoard {
  readonly state: BackfillStatus;
  progress: BackfillProgress | undefined;
  batchSize = 0;
  pausedBy: { user: string; at: string } | undefined;
  private readonly visibility = new Visibility();

  constructor(
    input: BackfillInput,
    /** The decision desk's list: pause, resume and cancel are recorded in it beside resolve. */
    readonly decisions: DecisionRecord[],
  ) {
    const carried = input.resume;
    if (carried) decisions.push(...carried.decisions);
    this.progress = carried?.progress;
    this.batchSize = carried?.batchSize ?? 0;
    this.pausedBy = carried?.pausedBy;
    this.state = {
      workflowId: workflowInfo().workflowId,
      environment: input.environment,
      name: input.name,
      state: 'running',
      requestedBy: input.requestedBy,
      startedAt: carried?.startedAt ?? new Date().toISOString(),
      decisions,
      summary: 'starting',
      runs: (carried?.runs ?? 0) + 1,
    };
    if (!carried) upsertSearchAttributes([{ key: KIND, value: 'backfill' }]);
  }

  snapshot(): BackfillStatus {
    return {
      ...this.state,
      decisions: this.decisions.slice(-KEPT_DECISIONS),
      ...(this.progress ? { progress: progressOf(this.progress) } : {}),
      ...(this.batchSize ? { batchSize: this.batchSize } : {}),
      ...(this.pausedBy && !this.state.paused ? { paused: { by: 'person' as const, user: this.pausedBy.user, since: this.pausedBy.at } } : {}),
    };
  }

  carry(): BackfillCarried {
    return {
      progress: this.progress!,
      batchSize: this.batchSize,
      ...(this.pausedBy ? { pausedBy: this.pausedBy } : {}),
      decisions: this.decisions.slice(-KEPT_DECISIONS),
      startedAt: this.state.startedAt,
      runs: this.state.runs,
    };
  }

  planned(target: string, table: string, progress: BackfillProgress, batchSize: number): void {
    this.state.target = target;
    this.state.table = table;
    this.progress = progress;
    if (!this.batchSize) this.batchSize = batchSize;
    this.show('running', `backfilling ${table}`);
  }

  batchDone(rows: number, tookMs: number, end: number, nextSize: number): void {
    const progress = this.progress!;
    this.progress = { ...progress, cursor: end, rowsDone: progress.rowsDone + rows, batchesDone: progress.batchesDone + 1, workingMs: progress.workingMs + tookMs };
    this.batchSize = nextSize;
    this.state.paused = undefined;
    this.state.retry = undefined;
    recordBackfillProgress(this.state.environment, this.state.name, rows, progressOf(this.progress)!.percent);
    this.show('running', `backfilling ${this.state.table}`);
  }

  /** The batch hit statement_timeout: the same keys are tried again in smaller batches. */
  timedOut(nextSize: number): void {
    this.batchSize = nextSize;
    this.state.retry = undefined;
  }

  skipped(end: number): void {
    this.progress = { ...this.progress!, cursor: end };
  }

  /** A try of the running batch failed with a transient error; the next try comes at `notice.nextTryAt`. */
  retrying(notice: RetryNotice): void {
    this.state.retry = notice;
    this.show(this.state.state, this.state.summary);
  }

  pausedByCondition(reason: PauseReason): void {
    this.state.retry = undefined;
    if (this.state.paused?.by !== 'condition' || this.state.paused.condition !== reason.condition) {
      this.state.paused = { by: 'condition', condition: reason.condition, value: reason.value, text: reason.text, since: new Date().toISOString() };
    } else this.state.paused = { ...this.state.paused, value: reason.value, text: reason.text };
    this.show('paused', `paused: ${reason.text}`);
  }

  pausedByPerson(): void {
    this.state.paused = undefined;
    this.show('paused', `paused by ${this.pausedBy?.user}`);
  }

  blocked(start: number, end: number, error: string, actions: readonly ResolveAction[]): void {
    this.state.retry = undefined;
    this.state.blocked = { start, end, error, actions };
    this.show('blocked', `blocked on keys ${start}..${end - 1}: ${error}`);
  }

  unblocked(): void {
    this.state.blocked = undefined;
  }

  running(): void {
    if (this.state.state !== 'running' || this.state.paused) {
      this.state.paused = undefined;
      this.show('running', `backfilling ${this.state.table}`);
    }
  }

  finish(state: Extract<BackfillState, 'finished' | 'cancelled' | 'aborted'>, summary: string): void {
    this.state.finishedAt = new Date().toISOString();
    this.state.paused = undefined;
    this.pausedBy = undefined;
    this.show(state, summary);
  }

  private show(state: BackfillState, summary: string): void {
    this.state.state = state;
    this.state.summary = summary;
    const snapshot = this.snapshot();
    const [headline, ...facts] = describeBackfillStatus(snapshot, this.progress);
    this.visibility.publish([`**${headline}**`, ...facts], state, this.state.environment);
  }
}
