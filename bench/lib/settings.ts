// What a bench run measures, from the environment: full runs by default, quick smoke runs on a busy machine.
export interface BenchSettings {
  /** Repetitions per method; medians are taken over them. */
  reps: number;
  /** How long the lock-stall blocker holds its lock. */
  blockerMs: number;
  /** Migrations in the throughput comparison. */
  migrations: number;
  /** Change requests parked at an approval in the scale benchmark, and how many of them are then approved. */
  parked: number;
  approvals: number;
  /** Migrations per environment in the history benchmark. */
  historyMigrations: number;
  /** How long the hold benchmark keeps a pipeline held by an incident. */
  holdMinutes: number;
  /** Fleet benchmark: targets (schemas in one database) in the first run, separate databases in the second, and targets migrated at once. */
  fleetTargets: number;
  fleetDatabases: number;
  fleetConcurrency: number;
  /** Rows of the table the backfill benchmark changes. */
  backfillRows: number;
  /** Benchmarks to run (all when empty). */
  only: string[];
  /** Server where benchmark databases are created and dropped. */
  adminUrl: string;
}

export function readSettings(env: NodeJS.ProcessEnv = process.env): BenchSettings {
  return {
    reps: positive(env.BENCH_REPS, 5),
    blockerMs: positive(env.BENCH_BLOCKER_MS, 10_000),
    migrations: positive(env.BENCH_MIGRATIONS, 200),
    parked: positive(env.BENCH_PARKED, 1_000),
    approvals: positive(env.BENCH_APPROVALS, 200),
    historyMigrations: positive(env.BENCH_HISTORY_MIGRATIONS, 3_000),
    holdMinutes: positive(env.BENCH_HOLD_MINUTES, 10),
    fleetTargets: positive(env.BENCH_FLEET_TARGETS, 1_000),
    fleetDatabases: positive(env.BENCH_FLEET_DATABASES, 100),
    fleetConcurrency: positive(env.BENCH_FLEET_CONCURRENCY, 16),
    backfillRows: positive(env.BENCH_BACKFILL_ROWS, 10_000_000),
    only: (env.BENCH_ONLY ?? '').split(',').map((name) => name.trim()).filter(Boolean),
    adminUrl: env.DBCHANGE_TEST_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  };
}

function positive(text: string | undefined, fallback: number): number {
  const value = Number(text);
  return Number.isFinite(value) && value > 0 ? value : fallback;
}
