// The activities of a fleet rollout: list the fleet's targets once (names only, for the workflow), and bring one
// target up to date (every pending migration, in batches, in one activity that heartbeats). URLs stay here.
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { DatabaseTarget, DbChangeConfig, EnvironmentConfig } from '../core/config';
import { FleetSourceError, type FleetTarget } from '../core/fleet-source';
import type { MigrationFile } from '../core/migration-dir';
import { comparePending, describeEdited } from '../core/pending';
import type { OutcomeCounts } from '../core/pipeline';
import { emptyCounts } from '../core/pipeline-record';
import { applyBatch } from './apply-batch';
import { BACKFILLS_TABLE, ensureBackfillTables } from './backfills';
import { readAppliedState, recordWithoutRunning, withConnection, type DatabasePools } from './db';
import { fleetDatabaseTarget, FleetTargetCache, FleetTargetNotListedError, readFleetTargets } from './fleet-source';
import { countLockTimeoutRetry, recordMigrationApplied } from './metrics';
import { settleFailure } from './step-progress';

export const FLEET_SOURCE_INVALID = 'FleetSourceInvalid';
export const FLEET_PLAN_CHANGED = 'FleetPlanChanged';
export const PRECHECKS_BLOCK = 'PrechecksBlock';
export const BACKFILL_NOT_FINISHED = 'BackfillNotFinished';

/** What the workflow keeps of a fleet: names in source order, and a digest of the files every target must run. */
export interface FleetListing {
  targets: string[];
  /** sha256 of every post-deploy file's version and checksum: a target refuses to run other files than the rollout's. */
  digest: string;
}

export interface TargetOutcome {
  counts: OutcomeCounts;
  durationMs: number;
}

/** What a failed target's failure carries: the migration it stopped on (for mark-complete), what it settled first. */
export interface TargetFailureDetails {
  version?: string;
  counts?: OutcomeCounts;
}

/** A failure that goes to a person carries the target's counts so far; a retryable one will count them again. */
function withCounts(failure: unknown, counts: OutcomeCounts): unknown {
  if (!(failure instanceof ApplicationFailure) || !failure.nonRetryable) return failure;
  const carried: TargetFailureDetails = { counts };
  return ApplicationFailure.create({ type: failure.type ?? undefined, nonRetryable: true, message: failure.message, details: [...(failure.details ?? []), carried] });
}

export function planDigest(files: MigrationFile[]): string {
  const hash = createHash('sha256');
  for (const file of files) hash.update(`${file.version}:${file.checksum}\n`);
  return hash.digest('hex');
}

interface FleetDependencies {
  config: DbChangeConfig;
  pools: DatabasePools;
  environmentNamed(name: string): EnvironmentConfig;
  readFiles(): MigrationFile[];
}

export function createFleetActivities({ config, pools, environmentNamed, readFiles }: FleetDependencies) {
  const fleetOf = (environment: string) => {
    const fleet = environmentNamed(environment).fleet;
    if (!fleet) throw ApplicationFailure.create({ type: 'ConfigError', nonRetryable: true, message: `environment ${environment} is not a fleet in dbchange.yaml` });
    return fleet;
  };
  const cache = new FleetTargetCache((environment) => readFleetTargets(fleetOf(environment)));

  /** The fleet target as a database the apply code can use; a bad source or a target no longer listed blocks it. */
  const targetOf = async (environment: string, name: string): Promise<DatabaseTarget> => {
    let target: FleetTarget;
    try {
      target = await cache.lookup(environment, name);
    } catch (error) {
      if (error instanceof FleetSourceError || error instanceof FleetTargetNotListedError) {
        throw ApplicationFailure.create({ type: FLEET_SOURCE_INVALID, nonRetryable: true, message: error.message });
      }
      throw error;
    }
    return fleetDatabaseTarget(environment, target);
  };

  return {
    /** Records a target's migration as done without running it: a person's mark-complete on a blocked target. */
    async markTargetMigrationComplete(input: { environment: string; target: string; version: string; decidedBy: string }): Promise<void> {
      const target = await targetOf(input.environment, input.target);
      const file = readFiles().find((item) => item.version === input.version);
      if (!file) throw ApplicationFailure.create({ type: 'MigrationNotFound', nonRetryable: true, message: `migration ${input.version} is no longer in ${config.migrations.postDeploy}` });
      try {
        await recordWithoutRunning(pools.pool(target), file, { outcome: 'marked-complete', workflowId: Context.current().info.workflowExecution?.workflowId ?? '', decidedBy: input.decidedBy });
      } finally {
        await pools.release(target.address);
      }
    },

    /** The fleet's targets as its source lists them now: the rollout's snapshot. Every problem names its row. */
    async listFleetTargets(environment: string): Promise<FleetListing> {
      cache.forget(environment);
      try {
        const targets = await cache.targets(environment);
        return { targets: targets.map((target) => target.name), digest: planDigest(readFiles()) };
      } catch (error) {
        if (error instanceof FleetSourceError) throw ApplicationFailure.create({ type: FLEET_SOURCE_INVALID, nonRetryable: true, message: error.message });
        throw error;
      }
    },

    /**
     * Applies every pending migration of one target, in order; a failure or blocking prechecks fail it for a person.
     * Its counts cover every try: the first heartbeat records what was pending, so a try after a lost worker counts
     * what an earlier try applied as already applied, and a failure carries what was settled before it.
     */
    async rollOutTarget(input: { environment: string; target: string; digest: string }): Promise<TargetOutcome> {
      const context = Context.current();
      const started = Date.now();
      const target = await targetOf(input.environment, input.target);
      const files = readFiles();
      if (planDigest(files) !== input.digest) {
        throw ApplicationFailure.create({ type: FLEET_PLAN_CHANGED, nonRetryable: true, message: `the post-deploy folder changed since this rollout listed it; every target must run the same files: restore them, or abort and start a new pipeline` });
      }
      const pool = pools.pool(target);
      const counts = emptyCounts();
      let planned: string[] = [];
      let current = '';
      const beat = () => context.heartbeat({ target: input.target, applying: current, pending: planned });
      const heartbeat = setInterval(beat, 1_000);
      try {
        const applied = await readAppliedState(pool);
        const { pending, edited } = comparePending(files, applied);
        if (edited.length > 0) throw ApplicationFailure.create({ type: 'AppliedMigrationEdited', nonRetryable: true, message: describeEdited(target.address, edited) });
        const earlierTry = context.info.heartbeatDetails as { pending?: string[] } | undefined;
        planned = earlierTry?.pending ?? pending.map((file) => file.version);
        const stillPending = new Set(pending.map((file) => file.version));
        counts['already-applied'] = planned.filter((version) => !stillPending.has(version)).length;
        beat();
        const byVersion = new Map(pending.map((file) => [file.version, file]));
        for (let next = 0; next < pending.length; ) {
          if (pending[next].requiresBackfill) await checkBackfillsFinished(pool, pending[next], input.target);
          // A batch ends before the next migration that requires a backfill: that one is checked on its own.
          const waiter = pending.findIndex((file, index) => index > next && file.requiresBackfill);
          const result = await applyBatch(
            {
              pool,
              // A fleet target is one database, which holds every schema: every migration runs there.
              database: undefined,
              settings: config.lockRetry,
              precheckTimeoutMs: config.gates.precheckTimeoutMs,
              workflowId: context.info.workflowExecution?.workflowId ?? '',
              stop: context.cancellationSignal,
              migrationFor: (version) => byVersion.get(version)!,
              onWaiting: async () => undefined,
              onLockRetry: () => countLockTimeoutRetry(input.environment),
              heartbeat: (fileName) => {
                current = fileName;
                beat();
              },
              onOutcome: (outcome) => {
                counts[outcome.outcome]++;
                if (outcome.outcome === 'applied') recordMigrationApplied(input.environment, outcome.durationMs);
              },
            },
            pending.slice(next, waiter < 0 ? undefined : waiter).map(({ version, checksum }) => ({ version, checksum })),
          );
          if (result.blocked) {
            const details: TargetFailureDetails = { version: result.blocked.version };
            throw ApplicationFailure.create({ type: PRECHECKS_BLOCK, nonRetryable: true, message: `prechecks block ${result.blocked.fileName}: ${result.blocked.findings.map((finding) => finding.message).join('; ')}`, details: [details] });
          }
          next += result.outcomes.length;
        }
        log.info(`rolled out ${input.target}`, { environment: input.environment, target: input.target, applied: counts.applied });
        return { counts, durationMs: Date.now() - started };
      } catch (error) {
        throw withCounts(await settleFailure(input.target, error, config.lockRetry.maxAttempts), counts);
      } finally {
        clearInterval(heartbeat);
        // A fleet has thousands of targets: keep no idle connections to the ones that are done.
        await pools.release(target.address);
      }
    },
  };
}

/**
 * `-- dbchange:requires-backfill` on a fleet target: backfill workflows run on environments with databases, not on
 * fleet targets, so the target blocks unless its own dbchange_backfills records the backfill as finished. Running the
 * migration anyway would be seed 000 again: a foreign key before the rows it needs.
 */
async function checkBackfillsFinished(pool: pg.Pool, file: MigrationFile, target: string): Promise<void> {
  const required = file.requiresBackfill ?? [];
  const finished = await withConnection(pool, async (client) => {
    // Created here, so that recording a backfill done by hand is one INSERT.
    await ensureBackfillTables(client);
    const found = await client.query<{ name: string }>(`SELECT name FROM ${BACKFILLS_TABLE} WHERE state = 'finished' AND name = ANY($1::text[])`, [required]);
    return found.rows.map((row) => row.name);
  });
  const missing = required.filter((name) => !finished.includes(name));
  if (missing.length === 0) return;
  const details: TargetFailureDetails = { version: file.version };
  throw ApplicationFailure.create({
    type: BACKFILL_NOT_FINISHED,
    nonRetryable: true,
    message: `${file.fileName} requires backfill ${missing.join(', ')}, not finished on ${target}; backfills do not run on fleet targets yet: fill the rows there, record it in its ${BACKFILLS_TABLE} (README: Fleets), then retry the target, or abort it`,
    details: [details],
  });
}
