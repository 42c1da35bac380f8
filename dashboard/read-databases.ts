// Each database of dbchange.yaml for the dashboard: what is pending there (the same reads as `migrations pending`),
// the last migration it ran, and whether it drifted from the same database on the environment before it.
import type { DbChangeConfig, EnvironmentConfig } from '../core/config';
import { databasePairs } from '../core/config';
import { describeDrift } from '../core/drift';
import { readMigrationDir } from '../core/migration-dir';
import type { DatabasePools } from '../activities/db';
import { driftBetween } from '../activities/drift';
import { readDatabasePending, type DatabasePending } from '../activities/pending-migrations';

export interface DatabaseRow extends Partial<DatabasePending> {
  address: string;
  environment: string;
  database: string;
  /** Drift against the same database on the environment before (undefined on the first). */
  drift?: { comparedWith: string; differences: string[] } | { comparedWith: string; error: string };
  /** Why it could not be read; a message without its URL. */
  error?: string;
}

export interface DatabasesRead {
  databases: DatabaseRow[];
  /** Fleet environments: their targets are shown by their rollout, not read one by one on each page view. */
  fleets: string[];
}

export async function readDatabases(config: DbChangeConfig, pools: DatabasePools): Promise<DatabasesRead> {
  const files = readMigrationDir(config.migrations.postDeploy);
  const plain = config.environments.filter((environment) => !environment.fleet);
  const rows = await Promise.all(
    plain.map(async (environment, index) => {
      const previous = plain[index - 1];
      return Promise.all(
        environment.databases.map(async (target): Promise<DatabaseRow> => {
          const base = { address: target.address, environment: target.environment, database: target.database };
          const [pending, drift] = await Promise.all([
            // pools.pool throws at once when the URL's variable is not set here: that too is shown, not thrown.
            (async () => readDatabasePending(pools.pool(target), target, files))().catch((error: unknown): DatabaseRow => ({ ...base, error: describeReadError(error) })),
            previous ? driftFrom(config, pools, previous, environment, target.address) : undefined,
          ]);
          return { ...pending, ...(drift ? { drift } : {}) };
        }),
      );
    }),
  );
  return { databases: rows.flat(), fleets: config.environments.filter((environment) => environment.fleet).map((environment) => environment.name) };
}

async function driftFrom(config: DbChangeConfig, pools: DatabasePools, previous: EnvironmentConfig, environment: EnvironmentConfig, address: string): Promise<DatabaseRow['drift']> {
  const pair = databasePairs(previous, environment).find(([, target]) => target.address === address);
  if (!pair) return undefined;
  try {
    return { comparedWith: pair[0].address, differences: describeDrift(await driftBetween(config, pools, pair[0].address, address)) };
  } catch (error) {
    return { comparedWith: pair[0].address, error: describeReadError(error) };
  }
}

/** SQLSTATE or error code and the first line of the message; anything shaped like a URL is cut out. */
export function describeReadError(error: unknown): string {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  const firstLine = (typeof message === 'string' ? message : String(error)).split('\n')[0].replace(/[a-z][a-z0-9+.-]*:\/\/\S+/gi, '(url hidden)');
  return typeof code === 'string' ? `${code}: ${firstLine}` : firstLine;
}
