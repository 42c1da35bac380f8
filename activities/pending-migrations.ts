// What each database has not run yet, read straight from it: shared by `migrations pending`, the worker's pending
// metrics and the dashboard, so the three always agree.
import type pg from 'pg';
import { selectEnvironments, type DatabaseTarget, type DbChangeConfig, type EnvironmentConfig } from '../core/config';
import { readMigrationDir, type MigrationFile } from '../core/migration-dir';
import { markOutOfOrder, newestAppliedPostDeploy, type OutOfOrder } from '../core/out-of-order';
import { comparePending, type EditedMigration } from '../core/pending';
import { DatabasePools, LEDGER_TABLE, readAppliedState } from './db';
import { fleetDatabaseTarget, readFleetTargets } from './fleet-source';

export interface PendingFile {
  version: string;
  name: string;
  fileName: string;
  outOfOrder?: OutOfOrder;
}

export interface DatabasePending {
  /** `staging`, `staging/ci`, or `cells/cell-07` for a fleet target. */
  address: string;
  environment: string;
  database: string;
  pending: PendingFile[];
  edited: EditedMigration[];
  /** The newest migration dbchange's ledger recorded as run (or marked complete) here, and when. */
  lastApplied?: { version: string; outcome: string; at: string };
}

/** One database against the post-deploy files: pending (marked when out of order), edited, and the last one run. */
export async function readDatabasePending(db: pg.Pool, target: Pick<DatabaseTarget, 'address' | 'environment' | 'database'>, files: MigrationFile[]): Promise<DatabasePending> {
  const applied = await readAppliedState(db);
  const { pending, edited } = comparePending(files, applied);
  const marked = markOutOfOrder(pending, newestAppliedPostDeploy(files.map((file) => file.version), applied));
  return {
    address: target.address,
    environment: target.environment,
    database: target.database,
    pending: marked.map(({ version, name, fileName, outOfOrder }) => ({ version, name, fileName, ...(outOfOrder && { outOfOrder }) })),
    edited,
    ...(applied.checksums.size > 0 ? { lastApplied: await readLastApplied(db) } : {}),
  };
}

/** Every database of the chosen environments (all when none are named); fleets are left out: see pendingFleets. */
export async function readPendingMigrations(config: DbChangeConfig, pools: DatabasePools, environments?: string[]): Promise<DatabasePending[]> {
  const files = readMigrationDir(config.migrations.postDeploy);
  const report: DatabasePending[] = [];
  for (const target of selectEnvironments(config, environments).flatMap((environment) => environment.databases)) {
    report.push(await readDatabasePending(pools.pool(target), target, files));
  }
  return report;
}

/** Fleet environments among the chosen ones: their targets are many, so they are read on their own, slower cycle. */
export function pendingFleets(config: DbChangeConfig, environments?: string[]): string[] {
  return selectEnvironments(config, environments).filter((environment) => environment.fleet).map((environment) => environment.name);
}

async function readLastApplied(db: pg.Pool): Promise<DatabasePending['lastApplied']> {
  const { rows } = await db.query<{ version: string; outcome: string; finished_at: Date }>(
    `SELECT version, outcome, finished_at FROM ${LEDGER_TABLE} WHERE outcome IN ('applied', 'marked-complete') ORDER BY id DESC LIMIT 1`,
  );
  return rows[0] && { version: rows[0].version, outcome: rows[0].outcome, at: rows[0].finished_at.toISOString() };
}

/** Fleet targets read at once: enough to read a thousand schemas in seconds, few enough to go unnoticed by them. */
export const FLEET_READ_CONCURRENCY = 4;

/**
 * Every target of a fleet environment as its source lists it now, `concurrency` at a time; each target's
 * connections are closed once it is read, so a fleet of thousands never holds more than a few.
 */
export async function readFleetPending(environment: EnvironmentConfig, pools: DatabasePools, files: MigrationFile[], concurrency = FLEET_READ_CONCURRENCY): Promise<DatabasePending[]> {
  if (!environment.fleet) return [];
  const targets = (await readFleetTargets(environment.fleet)).map((target) => fleetDatabaseTarget(environment.name, target));
  const report: DatabasePending[] = new Array(targets.length);
  let next = 0;
  const reader = async () => {
    for (let index = next++; index < targets.length; index = next++) {
      try {
        report[index] = { ...(await readDatabasePending(pools.pool(targets[index]), targets[index], files)), database: targets[index].address.slice(environment.name.length + 1) };
      } finally {
        await pools.release(targets[index].address);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, targets.length) }, reader));
  return report;
}
