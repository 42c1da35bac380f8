// dbchange's own metric names, shared by the workflow and activity code that emits them and by the docs and tests.
export const METRIC = {
  /** counter: migrations applied, tagged by environment */
  migrationsApplied: 'dbchange_migrations_applied',
  /** histogram (ms): how long an applied migration took, lock waits included */
  migrationDuration: 'dbchange_migration_duration',
  /** counter: statements that hit lock_timeout and were tried again, tagged by environment */
  lockTimeoutRetries: 'dbchange_lock_timeout_retries',
  /** counter: times a pipeline stopped for a person after a failure, tagged by environment */
  pipelinesBlocked: 'dbchange_pipelines_blocked',
  /** histogram (ms): from reaching an approval gate to its outcome, tagged by environment and outcome */
  approvalWait: 'dbchange_approval_wait',
  /** counter: fleet targets done, blocked (failed, waiting for a person) or failed (given up), tagged by environment and outcome */
  fleetTargets: 'dbchange_fleet_targets',
  /** gauge: post-deploy migrations not yet run, tagged by environment and database (a fleet's: by target name) */
  pendingMigrations: 'dbchange_pending_migrations',
  /** gauge: seconds since the oldest pending migration's version (when it was written), same tags; 0 when none is pending */
  oldestPendingAge: 'dbchange_oldest_pending_age_seconds',
  /** counter: rows a backfill's batches changed, tagged by environment and backfill */
  backfillRows: 'dbchange_backfill_rows',
  /** gauge: percent of a backfill's key range done, tagged by environment and backfill */
  backfillProgress: 'dbchange_backfill_progress_percent',
} as const;
