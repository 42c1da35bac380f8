// The pending-migrations gauges, refreshed by the worker on a timer from the same reads as `migrations pending`.
import type { MetricMeter, MetricTags } from '@temporalio/common';
import { DatabasePools } from '../activities/db';
import { readFleetPending, readPendingMigrations, type DatabasePending } from '../activities/pending-migrations';
import type { DbChangeConfig } from '../core/config';
import { METRIC } from '../core/metric-names';
import { readMigrationDir } from '../core/migration-dir';
import { oldestPendingAgeSeconds } from '../core/pending';

/**
 * Databases named in dbchange.yaml: two light reads each (schema_migrations, the ledger's newest row). An alert on
 * a migration pending for hours or days needs nothing finer, and a scrape every 15-60 s still sees fresh values.
 */
export const PENDING_REFRESH_MS = 60_000;
/**
 * Fleets: every target is a connection and two reads, so a thousand targets cost a few seconds of four
 * connections each time. Every 10 minutes keeps that under 1 % of the time, and fleets change in rollouts, which
 * `pdm status` and the dashboard follow live.
 */
export const FLEET_PENDING_REFRESH_MS = 10 * 60_000;

export interface PendingMetrics {
  stop(): Promise<void>;
}

export function startPendingMetrics(config: DbChangeConfig, meter: MetricMeter, log: (line: string) => void, intervals = { databasesMs: PENDING_REFRESH_MS, fleetsMs: FLEET_PENDING_REFRESH_MS }): PendingMetrics {
  const pending = meter.createGauge(METRIC.pendingMigrations, 'int', 'migrations', 'post-deploy migrations not yet run, per environment and database');
  const age = meter.createGauge(METRIC.oldestPendingAge, 'int', '', 'seconds since the oldest pending post-deploy migration was written (its version); 0 when none is pending');
  const pools = new DatabasePools();
  const publish = (databases: DatabasePending[]) => {
    const now = Date.now();
    for (const database of databases) {
      const tags: MetricTags = { environment: database.environment, database: database.database };
      pending.set(database.pending.length, tags);
      age.set(oldestPendingAgeSeconds(database.pending, now), tags);
    }
  };
  const fleets = config.environments.filter((environment) => environment.fleet);
  const loops = [
    repeatEvery(intervals.databasesMs, async () => publish(await readPendingMigrations(config, pools)), (error) => log(`pending metrics: ${describe(error)}`)),
    ...(fleets.length === 0
      ? []
      : [
          repeatEvery(intervals.fleetsMs, async () => {
            const files = readMigrationDir(config.migrations.postDeploy);
            for (const fleet of fleets) publish(await readFleetPending(fleet, pools, files));
          }, (error) => log(`pending metrics (fleets): ${describe(error)}`)),
        ]),
  ];
  return {
    async stop() {
      await Promise.all(loops.map((loop) => loop.stop()));
      await pools.close();
    },
  };
}

/** Runs `task` now and then `ms` after each run ends (never two at once); a failure is reported and the next run goes on. */
function repeatEvery(ms: number, task: () => Promise<void>, report: (error: unknown) => void): { stop(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  const run = () => {
    running = task()
      .catch(report)
      .finally(() => {
        // The timer must not keep a worker that is shutting down alive.
        if (!stopped) timer = setTimeout(run, ms).unref();
      });
  };
  run();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

/** The error's first line; pg's messages name the database and SQLSTATE, never the URL. */
function describe(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0];
}
