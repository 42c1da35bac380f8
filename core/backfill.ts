// Backfills: a data change walked over a table's integer key in batches that size and pace themselves. Pure and
// zod-free, so the backfill workflow may import it: batch sizing, pacing, pause conditions, progress.
import { formatDuration } from './duration';

export const BACKFILL_WORKFLOW_TYPE = 'backfill';
/** Sent to running pipelines when a backfill finishes, so one waiting for it looks again at once. */
export const BACKFILL_FINISHED_SIGNAL = 'backfillFinished';
/** GitLab's batched background migrations start near this many rows per batch. */
export const INITIAL_BATCH_SIZE = 1_000;
export const DEFAULT_TARGET_BATCH_MS = 1_000;
export const DEFAULT_MAX_BATCH_SIZE = 100_000;
/** One batch never grows or shrinks by more than this factor: a single fast or slow batch is noise. */
const MAX_GROWTH = 2;
const MIN_SHRINK = 0.5;

/** What a backfill file says, as the workflow carries it: names and SQL text, never a connection string. */
export interface BackfillSpec {
  name: string;
  version: string;
  fileName: string;
  checksum: string;
  table: string;
  key: string;
  /** The SQL of one batch, with :start and :end. */
  batch: string;
  /** The database of the environment it runs on (dbchange.yaml's `databases:` key); absent with only one. */
  database?: string;
  targetBatchMs: number;
  maxRowsPerSecond?: number;
  maxBatchSize: number;
  pauseWhen: PauseConditions;
}

export interface PauseConditions {
  /** Pause while any replica's replay lag (pg_stat_replication.replay_lag) is over this. */
  replicationLagOverMs?: number;
  /** Pause while autovacuum works on the backfilled table. */
  autovacuumOnTable?: boolean;
  /** Pause while more than this many sessions wait for a lock on the table. */
  lockWaitersOver?: number;
  /** Pause while this query returns true. */
  query?: string;
}

/** What the database says now, for each condition the file names (undefined: not asked). */
export interface PauseReadings {
  replicationLagMs?: number;
  autovacuumRunning?: boolean;
  lockWaiters?: number;
  queryResult?: boolean;
}

export type PauseConditionName = 'replicationLagOver' | 'autovacuumOnTable' | 'lockWaitersOver' | 'query';

/** The condition that holds, with what was read and the limit, in words: `replicationLagOver: replay lag 12.0s > 5.0s`. */
export interface PauseReason {
  condition: PauseConditionName;
  value: string;
  text: string;
}

/** The first condition of the file that holds now, or undefined when the backfill may go on. */
export function pauseReason(conditions: PauseConditions, readings: PauseReadings): PauseReason | undefined {
  const { replicationLagOverMs, autovacuumOnTable, lockWaitersOver, query } = conditions;
  if (replicationLagOverMs !== undefined && readings.replicationLagMs !== undefined && readings.replicationLagMs > replicationLagOverMs) {
    const value = formatDuration(readings.replicationLagMs);
    return { condition: 'replicationLagOver', value, text: `replicationLagOver: replica replay lag ${value} is over ${formatDuration(replicationLagOverMs)}` };
  }
  if (autovacuumOnTable && readings.autovacuumRunning) {
    return { condition: 'autovacuumOnTable', value: 'running', text: 'autovacuumOnTable: autovacuum is working on the table' };
  }
  if (lockWaitersOver !== undefined && readings.lockWaiters !== undefined && readings.lockWaiters > lockWaitersOver) {
    return { condition: 'lockWaitersOver', value: String(readings.lockWaiters), text: `lockWaitersOver: ${readings.lockWaiters} ${readings.lockWaiters === 1 ? 'session waits' : 'sessions wait'} for locks on the table (limit ${lockWaitersOver})` };
  }
  if (query !== undefined && readings.queryResult === true) {
    return { condition: 'query', value: 'true', text: `query: the pause query returned true (${oneLine(query)})` };
  }
  return undefined;
}

/**
 * The next batch's key span from the last one: scaled toward the target duration, by at most ×2 or ×½ a batch,
 * within [1, max]. A batch that took no measurable time doubles.
 */
export function nextBatchSize(size: number, tookMs: number, targetMs: number, maxSize: number): number {
  const ratio = tookMs <= 0 ? MAX_GROWTH : Math.min(MAX_GROWTH, Math.max(MIN_SHRINK, targetMs / tookMs));
  return clampSize(Math.round(size * ratio), maxSize);
}

/** A batch that hit statement_timeout is split: the next try covers half its span. */
export function splitBatchSize(size: number): number {
  return Math.max(1, Math.floor(size / 2));
}

export function clampSize(size: number, maxSize: number): number {
  return Math.max(1, Math.min(maxSize, Math.floor(size)));
}

/** How long to wait after a batch so the average stays under maxRowsPerSecond (0 when there is no limit). */
export function paceDelayMs(rows: number, tookMs: number, maxRowsPerSecond: number | undefined): number {
  if (!maxRowsPerSecond || rows <= 0) return 0;
  return Math.max(0, Math.ceil((rows / maxRowsPerSecond) * 1_000 - tookMs));
}

/** The half-open key range [start, end) of the whole table, read when the backfill starts. */
export interface KeyRange {
  start: number;
  end: number;
}

/** Where a backfill stands: enough to answer the status and to compute a rate and what is left. */
export interface BackfillProgress {
  range: KeyRange;
  /** Everything below this key is done (applied or skipped). */
  cursor: number;
  rowsDone: number;
  batchesDone: number;
  /** Time spent running batches, pauses excluded: the rate is per working second. */
  workingMs: number;
}

export interface ProgressReport {
  rowsDone: number;
  batchesDone: number;
  percent: number;
  rowsPerSecond: number;
  /** Estimated time left, from the key span covered per working second; undefined before the first batch. */
  etaMs?: number;
}

export function reportProgress(progress: BackfillProgress): ProgressReport {
  const { range, cursor, rowsDone, batchesDone, workingMs } = progress;
  const span = Math.max(0, range.end - range.start);
  const covered = Math.min(span, Math.max(0, cursor - range.start));
  const percent = span === 0 ? 100 : Math.floor((covered / span) * 1_000) / 10;
  const seconds = workingMs / 1_000;
  const rowsPerSecond = seconds > 0 ? Math.round(rowsDone / seconds) : 0;
  const etaMs = covered > 0 && workingMs > 0 ? Math.round(((span - covered) / covered) * workingMs) : undefined;
  return { rowsDone, batchesDone, percent, rowsPerSecond, ...(etaMs !== undefined ? { etaMs } : {}) };
}

/** `42.5% of keys 1..1000000 · 425,000 rows · 8,100 rows/s · about 1m 10s left` */
export function describeProgress(progress: BackfillProgress): string {
  const report = reportProgress(progress);
  const eta = report.etaMs ? ` · about ${formatDuration(report.etaMs)} left` : '';
  return `${report.percent}% of keys ${progress.range.start}..${progress.range.end - 1} · ${report.rowsDone.toLocaleString('en-US')} rows · ${report.rowsPerSecond.toLocaleString('en-US')} rows/s${eta}`;
}

/** The tables a backfill fills: the one it walks, and those its batch inserts into or updates (a copy's target). */
export function tablesFilledBy(spec: Pick<BackfillSpec, 'table' | 'batch'>): string[] {
  const written = [...spec.batch.matchAll(/\b(?:insert\s+into|update)\s+((?:[A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*)/gi)].map((match) => match[1]);
  return [...new Set([spec.table, ...written])];
}

export function backfillWorkflowId(environment: string, name: string): string {
  return `backfill-${environment}-${name}`;
}

/** `:start` and `:end` as $1 and $2, leaving `::casts` alone; the batch covers keys in [:start, :end). */
export function bindBatchSql(sql: string): string {
  return sql.replace(/(?<![:\w]):(start|end)\b/g, (_, bound: string) => (bound === 'start' ? '$1' : '$2'));
}

/** Which of `:start` and `:end` the batch SQL lacks: a batch that ignores its bounds would touch the whole table. */
export function missingBounds(sql: string): string[] {
  return ['start', 'end'].filter((bound) => !new RegExp(`(?<![:\\w]):${bound}\\b`).test(sql));
}

export type BackfillState = 'running' | 'paused' | 'blocked' | 'finished' | 'cancelled' | 'aborted';
export const FINAL_BACKFILL_STATES: readonly BackfillState[] = ['finished', 'cancelled', 'aborted'];

function oneLine(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 80 ? `${line.slice(0, 77)}...` : line;
}

/** How a batch is named in its failures and its retries: `batch of keys 141..160` (`end` is excluded). */
export function batchKeys(batch: { start: number; end: number }): string {
  return `batch of keys ${batch.start}..${batch.end - 1}`;
}
