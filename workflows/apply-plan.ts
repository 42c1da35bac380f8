// Applying one environment's pending migrations: the plan is linted once, then applied in batches (one activity
// each, every migration with its prechecks, its transaction and its ledger row). A block or a failure stops for a
// person, a person may stop a running batch, and a run whose history is full hands the rest to the next run.
import { ActivityCancellationType, ActivityFailure, ApplicationFailure, CancelledFailure, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { DbChangeActivities, PendingMigration } from '../activities';
import type { BatchResult, CompletedBeforeFailure } from '../activities/apply-batch';
import type { MigrationOutcome } from '../core/pipeline';
import { describeBlocking } from '../core/prechecks';
import { waitForBackfills } from './backfill-wait';
import { block, CHECK_ACTIONS, endAborted, MIGRATION_ACTIONS, resolvable, type PipelineRun } from './pipeline-desk';
import { retryStatementTimeouts, runStoppable, transientRetryPolicy } from './running-step';

const NON_RETRYABLE_ERRORS = ['ConfigError', 'MigrationFileError'];
const { applyMigrations, markMigrationComplete } = proxyActivities<DbChangeActivities>({
  startToCloseTimeout: '24h',
  heartbeatTimeout: '10s',
  // A person's stop waits until the running migration's SQL was cancelled and rolled back.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: transientRetryPolicy(NON_RETRYABLE_ERRORS),
});
// A worker that dies mid-lint is noticed by its missing heartbeats; before, its lint held the pipeline for 10 minutes.
const { lintPlan } = proxyActivities<DbChangeActivities>({ startToCloseTimeout: '10m', heartbeatTimeout: '30s', retry: { maximumAttempts: 3 } });

/** Migrations offered to one batch; its time budget (apply-batch.ts) usually ends it sooner. */
const BATCH_LIMIT = 100;
/**
 * A run hands over to a new one (continue-as-new) after this many events, or when Temporal suggests it: far below
 * the 10,240-event warning, so replaying a run (for a status query after a worker restart) stays quick.
 */
export const EVENTS_PER_RUN = 1_000;

export function runIsFull(): boolean {
  const info = workflowInfo();
  return info.continueAsNewSuggested || info.historyLength >= EVENTS_PER_RUN;
}

/** Applies `pending` in order; 'hand-over' when this run is full and the rest is for the next run. */
export async function applyPlan(run: PipelineRun, environment: string, pending: PendingMigration[]): Promise<'done' | 'hand-over'> {
  if (pending.length === 0) return 'done';
  await lintOnce(run, environment, pending);
  const before = run.board.handled(environment);
  let next = 0;
  while (next < pending.length) {
    if (next > 0 && runIsFull()) return 'hand-over';
    const required = pending[next].requiresBackfill;
    if (required && run.backfills) {
      const wait = { target: environment, names: required, recheckMs: run.backfills.recheckMs, fileName: pending[next].fileName };
      if ((await waitForBackfills(run, run.backfills.wakeups, wait, runIsFull)) === 'hand-over') return 'hand-over';
    }
    // A batch ends before the next migration that waits for a backfill: that one waits on its own.
    const waiter = pending.findIndex((migration, index) => index > next && migration.requiresBackfill);
    next += await applyNextBatch(run, environment, pending.slice(next, waiter < 0 ? undefined : waiter), before + next, before + pending.length);
  }
  return 'done';
}

/** Lint is advisory: findings go to the status, and a lint that cannot run holds nothing. */
async function lintOnce(run: PipelineRun, environment: string, pending: PendingMigration[]): Promise<void> {
  try {
    const summary = await lintPlan.executeWithOptions({ summary: `lint ${pending.length} migrations for ${environment}` }, [{ environment, migrations: pending.map(refOf) }]);
    run.board.recordLint(environment, summary);
  } catch (error) {
    if (!(error instanceof ActivityFailure)) throw error;
  }
}

/**
 * One batch from the first of `rest`, and whatever a person decides when it blocks: returns how many migrations it
 * settled (applied, found applied, or marked complete), at least one. `offset` of `total` is for the status.
 */
async function applyNextBatch(run: PipelineRun, environment: string, rest: PendingMigration[], offset: number, total: number): Promise<number> {
  const { board } = run;
  let settled = 0;
  const current = () => rest[settled];
  const record = (outcomes: MigrationOutcome[]) => {
    for (const outcome of outcomes) board.recordMigration(environment, outcome);
    settled += outcomes.length;
  };
  // Each call starts at the first unsettled migration, so a retry never runs what a failed batch already applied.
  const attempt = async (): Promise<BatchResult> => {
    const batch = rest.slice(settled, settled + BATCH_LIMIT);
    board.applying(environment, batch, offset + settled, total);
    try {
      return await applyMigrations.executeWithOptions({ summary: batchSummary(batch, environment) }, [{ environment, migrations: batch.map(refOf) }]);
    } catch (error) {
      record(completedBefore(error));
      throw error;
    }
  };
  const markComplete = async (user: string): Promise<BatchResult> => ({ outcomes: [await markOne(run, environment, current(), user)], prechecks: [] });

  while (settled === 0) {
    const result = await resolvable(run, environment, MIGRATION_ACTIONS, () => applyStoppably(run, environment, current, attempt, record), markComplete);
    if (!result) continue;
    record(result.outcomes);
    const checked = [...result.outcomes.map((outcome) => `${outcome.version}_${outcome.name}.sql`), ...(result.blocked ? [result.blocked.fileName] : [])];
    board.recordPrechecks(environment, checked, result.prechecks);
    // Prechecks that block a later migration end the batch before it; the next batch meets them first.
    if (!result.blocked || settled > 0) continue;
    const resolution = await block(run, environment, `prechecks block ${result.blocked.fileName}: ${describeBlocking(result.blocked.findings)}`, MIGRATION_ACTIONS);
    if (resolution.action === 'mark-complete') record([await markOne(run, environment, current(), resolution.user)]);
  }
  return settled;
}

/** A batch a person may stop while it runs; a statement timeout is retried a bounded number of times. */
async function applyStoppably(run: PipelineRun, environment: string, current: () => PendingMigration, attempt: () => Promise<BatchResult>, record: (outcomes: MigrationOutcome[]) => void): Promise<BatchResult> {
  const result = await runStoppable(run.desk, environment, () => retryStatementTimeouts((retry) => run.board.stepProgress({ step: current().version, retry }), attempt));
  if (!result.stopped) return result.done;
  // The stop came as the batch finished: what it applied stays recorded, and nothing more runs.
  if (result.done) record(result.done.outcomes);
  const stoppedFile = stoppedFileOf(result.failure) ?? current().fileName;
  return endAborted(run.board, environment, result.stopped, `stopped ${stoppedFile} while it ran; its SQL was cancelled and rolled back`);
}

async function markOne(run: PipelineRun, environment: string, migration: PendingMigration, user: string): Promise<MigrationOutcome> {
  const ref = { ...refOf(migration), environment, decidedBy: user };
  const outcome = await resolvable(run, environment, CHECK_ACTIONS, () => markMigrationComplete.executeWithOptions({ summary: `mark ${migration.fileName} complete on ${environment}` }, [ref]));
  return outcome ?? { version: migration.version, name: migration.name, outcome: 'marked-complete', durationMs: 0, attempts: 0 };
}

function refOf(migration: PendingMigration): { version: string; checksum: string } {
  return { version: migration.version, checksum: migration.checksum };
}

/** `apply 20240101000001_a … 20240101000003_c on staging (3)`: the UI names every batch's files. */
function batchSummary(batch: PendingMigration[], environment: string): string {
  const files = batch.length === 1 ? batch[0].fileName : `${batch[0].fileName} … ${batch[batch.length - 1].fileName}`;
  return `apply ${files} on ${environment} (${batch.length})`;
}

/** The outcomes a failed batch settled before the migration that failed it. */
function completedBefore(error: unknown): MigrationOutcome[] {
  const cause = error instanceof ActivityFailure ? error.cause : undefined;
  if (!(cause instanceof ApplicationFailure)) return [];
  const carried = (cause.details ?? []).find((detail): detail is CompletedBeforeFailure => Array.isArray((detail as CompletedBeforeFailure | undefined)?.completed));
  return carried?.completed ?? [];
}

/** The file whose SQL a stop cancelled, as the activity named it. */
function stoppedFileOf(failure: unknown): string | undefined {
  const cause = failure instanceof ActivityFailure ? failure.cause : failure;
  return cause instanceof CancelledFailure ? /^(\S+\.sql): stopped/.exec(cause.message)?.[1] : undefined;
}
