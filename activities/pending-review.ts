// Reads the ledgers a promotion check needs: the worker's, before each environment; the CLI's, before it starts a pipeline.
import pg from 'pg';
import { counterpartIn, selectEnvironments, type DatabaseTarget, type DbChangeConfig } from '../core/config';
import type { MigrationFile } from '../core/migration-dir';
import { environmentsBefore, reviewEnvironment, type EnvironmentReview, type LedgerReading } from '../core/promotion';
import { readAppliedState, type DatabasePools } from './db';

/** A CLI that cannot reach a database says so and goes on; it must not hang on it. */
const UP_FRONT_CONNECT_TIMEOUT_MS = 5_000;
const UP_FRONT_QUERY_TIMEOUT_MS = 10_000;

/**
 * The database's own ledger and that of the same database (by name) on every earlier environment (dbchange.yaml
 * order): a worker must be able to read them all.
 */
export async function reviewPendingOn(config: DbChangeConfig, pools: DatabasePools, files: MigrationFile[], target: DatabaseTarget): Promise<EnvironmentReview<MigrationFile>> {
  const earlier = earlierCounterparts(config, target);
  const [own, ...before] = await Promise.all([target, ...earlier].map((item) => readAppliedState(pools.pool(item))));
  return reviewEnvironment(
    files,
    target.address,
    own,
    earlier.map((item, index) => ({ environment: item.address, state: before[index] })),
  );
}

/** The same database on the environments before this one: what ran there is what runs here. */
export function earlierCounterparts(config: DbChangeConfig, target: DatabaseTarget): DatabaseTarget[] {
  const count = selectEnvironments(config, [target.environment])[0].databases.length;
  return environmentsBefore(config.environments, target.environment).flatMap((environment) => counterpartIn(environment, target, count) ?? []);
}

/** Every given database's ledger that this process can read; the others name why not (a variable not set here, no connection). */
export async function readLedgersUpFront(targets: DatabaseTarget[]): Promise<LedgerReading[]> {
  return Promise.all(
    targets.map(async (target): Promise<LedgerReading> => {
      const label = { environment: target.address, database: target.database };
      if (!target.url) {
        return { ...label, unreadable: `${target.missingVariables.map((name) => `\${${name}}`).join(', ')} not set here` };
      }
      const client = new pg.Client({
        connectionString: target.url,
        application_name: 'dbchange',
        connectionTimeoutMillis: UP_FRONT_CONNECT_TIMEOUT_MS,
        query_timeout: UP_FRONT_QUERY_TIMEOUT_MS,
      });
      // A connection lost after connect also emits 'error'; the pending query rejects with it.
      client.on('error', () => undefined);
      try {
        await client.connect();
        return { ...label, state: await readAppliedState(client) };
      } catch (error) {
        return { ...label, unreadable: unreadableReason(error) };
      } finally {
        await client.end().catch(() => undefined);
      }
    }),
  );
}

/** pg's messages name the host and port at most, never the password; keep them to one short line. */
function unreadableReason(error: unknown): string {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message.split('\n')[0].slice(0, 200) : String(error);
  return `cannot read its ledger: ${code && !message.includes(code) ? `${code} ` : ''}${message}`;
}
