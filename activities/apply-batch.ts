// Applies consecutive pending migrations of one database in one activity, so a long plan costs a few workflow
// events per batch instead of a dozen per migration. Each migration keeps its prechecks right before it, its own
// transaction, schema_migrations row and ledger row. The batch ends at its time budget, at a migration whose
// prechecks block, or at a failure: a failure of the first migration is the batch's own (retried or blocking exactly
// as a single migration's); one further on ends the batch early, or, when no retry can fix it, fails the batch
// carrying the outcomes of the migrations before it.
import { ApplicationFailure, CancelledFailure } from '@temporalio/activity';
import type pg from 'pg';
import type { MigrationFile } from '../core/migration-dir';
import type { MigrationOutcome } from '../core/pipeline';
import { describeBlocking, type PrecheckFinding } from '../core/prechecks';
import { applyMigrationOnce, type ApplySettings } from './apply-migration';
import { runsOn } from '../core/targets';
import { recordWithoutRunning } from './db';
import { runPrechecks, type BackfillTable } from './prechecks';
import { stoppedByPerson } from './stop';

/** A batch stops taking new migrations after this long: short enough that a stop or a status stays current. */
export const BATCH_BUDGET_MS = 1_500;

export interface BatchResult {
  /** One per migration the batch settled, in order. */
  outcomes: MigrationOutcome[];
  /** What the prechecks found on the migrations the batch looked at (blocking ones end the batch). */
  prechecks: PrecheckFinding[];
  /** The migration whose prechecks block: nothing of it ran, and the batch ended before it. */
  blocked?: { version: string; fileName: string; findings: PrecheckFinding[] };
}

/** What a failed batch carries besides the failure: the migrations it settled before it. */
export interface CompletedBeforeFailure {
  completed: MigrationOutcome[];
}

export interface BatchContext {
  pool: pg.Pool;
  /**
   * The database's name (`main`, `ci`) in an environment of several: a migration whose header names other
   * databases is skipped here. Undefined with one database, which holds every schema and runs everything.
   */
  database: string | undefined;
  settings: ApplySettings;
  precheckTimeoutMs: number;
  /** The project's backfills by table, so an orphan count names the one that fills the referenced table. */
  backfills?: readonly BackfillTable[];
  workflowId: string;
  stop: AbortSignal;
  /** The file of a listed migration, checked against the listed checksum. */
  migrationFor(version: string, checksum: string): MigrationFile;
  /** Tells the workflow which migration runs now and what it waits for. */
  onWaiting(version: string, waitingFor: string | undefined): Promise<void>;
  onLockRetry(): void;
  /** Heartbeats name the file being applied (the UI shows them on the pending activity). */
  heartbeat(fileName: string): void;
  /** Each migration's outcome as it is settled (metrics and logs), whatever the batch's own end. */
  onOutcome(outcome: MigrationOutcome): void;
}

export async function applyBatch(context: BatchContext, migrations: { version: string; checksum: string }[]): Promise<BatchResult> {
  const started = Date.now();
  const result: BatchResult = { outcomes: [], prechecks: [] };
  const settle = (outcome: MigrationOutcome) => {
    result.outcomes.push(outcome);
    context.onOutcome(outcome);
  };
  for (const [index, ref] of migrations.entries()) {
    if (index > 0 && Date.now() - started >= BATCH_BUDGET_MS) break;
    if (stoppedByPerson(context.stop)) throw new CancelledFailure('stopped between migrations; nothing more was applied');
    try {
      const migration = context.migrationFor(ref.version, ref.checksum);
      context.heartbeat(migration.fileName);
      if (!runsOn(migration.databases, context.database)) {
        settle(await skipHere(context, migration));
        continue;
      }
      const findings = await runPrechecks(
        context.pool,
        [{ label: migration.fileName, sql: migration.up, startLine: migration.upStartLine, transactional: migration.transactional }],
        context.precheckTimeoutMs,
        context.backfills,
      );
      result.prechecks.push(...findings);
      if (describeBlocking(findings)) return { ...result, blocked: { version: migration.version, fileName: migration.fileName, findings } };
      const outcome = await applyMigrationOnce({
        pool: context.pool,
        migration,
        settings: context.settings,
        workflowId: context.workflowId,
        stop: context.stop,
        onWaiting: (waitingFor) => context.onWaiting(migration.version, waitingFor),
        onLockRetry: context.onLockRetry,
      });
      settle(outcome);
    } catch (error) {
      if (index === 0 || error instanceof CancelledFailure) throw error;
      // Retryable: end here, and the next batch begins with this migration, retried as its first.
      if (!(error instanceof ApplicationFailure) || !error.nonRetryable) return result;
      throw withCompleted(error, result.outcomes);
    }
  }
  return result;
}

/** Recorded as done without running: GitLab's way for a migration restricted to other databases. */
async function skipHere(context: BatchContext, migration: MigrationFile): Promise<MigrationOutcome> {
  await recordWithoutRunning(context.pool, migration, { outcome: 'skipped', workflowId: context.workflowId });
  return { version: migration.version, name: migration.name, outcome: 'skipped', durationMs: 0, attempts: 1, note: `runs only on ${migration.databases!.join(', ')}` };
}

function withCompleted(failure: ApplicationFailure, completed: MigrationOutcome[]): ApplicationFailure {
  const carried: CompletedBeforeFailure = { completed };
  return ApplicationFailure.create({ type: failure.type ?? undefined, nonRetryable: true, message: failure.message, details: [...(failure.details ?? []), carried] });
}
