// What a backfill workflow is given, carries across continue-as-new, and answers to `status`. Pure and zod-free.
import { describeProgress, reportProgress, type BackfillProgress, type BackfillState, type PauseReason, type ProgressReport } from './backfill';
import type { DecisionRecord, ResolveAction, SigningGate } from './decisions';
import { formatDuration } from './duration';
import { describeRetry, type RetryNotice } from './step-retries';

/** Decisions kept in the carried status: the full record of every batch is each database's ledger. */
export const KEPT_DECISIONS = 50;

export interface BackfillInput {
  environment: string;
  name: string;
  requestedBy: string;
  /** Set by the workflow itself when it continues as new. */
  resume?: BackfillCarried;
}

/** Everything the next run needs: compact, whatever the number of batches. */
export interface BackfillCarried {
  progress: BackfillProgress;
  batchSize: number;
  pausedBy?: { user: string; at: string };
  decisions: DecisionRecord[];
  startedAt: string;
  runs: number;
}

export interface BackfillStatus {
  workflowId: string;
  environment: string;
  /** The database's address: the environment, or `environment/database`. */
  target?: string;
  name: string;
  table?: string;
  state: BackfillState;
  requestedBy: string;
  startedAt: string;
  finishedAt?: string;
  progress?: ProgressReport & { cursor: number; keyStart: number; keyEnd: number };
  batchSize?: number;
  /** Why it is paused now: a condition (which and its value) or a person. */
  paused?: { by: 'condition'; condition: PauseReason['condition']; value: string; text: string; since: string } | { by: 'person'; user: string; since: string };
  /** The running batch's last failed try (a transient error), while it waits for its next. */
  retry?: RetryNotice;
  /** A batch that failed with a non-transient error, waiting for `resolve`. */
  blocked?: { start: number; end: number; error: string; actions: readonly ResolveAction[] };
  decisions: DecisionRecord[];
  /** One line a person reads first. */
  summary: string;
  /** Runs of this workflow so far (continue-as-new keeps each history short). */
  runs: number;
  /** What a pause, resume, cancel or resolve signed now must name (when dbchange.yaml has approvals:). */
  signing?: SigningGate;
}

export function progressOf(progress: BackfillProgress): BackfillStatus['progress'] {
  return { ...reportProgress(progress), cursor: progress.cursor, keyStart: progress.range.start, keyEnd: progress.range.end };
}

/** The status as a few lines for `dbchange backfill status` and the UI's current details. */
export function describeBackfillStatus(status: BackfillStatus, progress?: BackfillProgress): string[] {
  const lines = [`${status.name} on ${status.target ?? status.environment}: ${status.state}`];
  if (progress) lines.push(describeProgress(progress));
  else if (status.progress) lines.push(`${status.progress.percent}% · ${status.progress.rowsDone.toLocaleString('en-US')} rows · ${status.progress.rowsPerSecond} rows/s${status.progress.etaMs ? ` · about ${formatDuration(status.progress.etaMs)} left` : ''}`);
  if (status.paused?.by === 'condition') lines.push(`paused since ${status.paused.since}: ${status.paused.text}`);
  if (status.paused?.by === 'person') lines.push(`paused by ${status.paused.user} since ${status.paused.since}; resume with \`dbchange backfill resume ${status.name} --env ${status.environment} --as USER\``);
  if (status.retry) lines.push(describeRetry(status.retry));
  if (status.blocked) lines.push(`blocked on keys ${status.blocked.start}..${status.blocked.end - 1}: ${status.blocked.error} — run \`dbchange resolve ${status.workflowId} --as USER --action ${status.blocked.actions.join('|')}\``);
  if (status.batchSize !== undefined && !status.finishedAt) lines.push(`batch size ${status.batchSize} keys`);
  return lines;
}
