// Reads the ledgers a promotion check needs: the worker's, before each environment; the CLI's, before it starts a pipeline.
import pg from 'pg';
import type { DbChangeConfig, EnvironmentConfig } from '../core/config';
import type { MigrationFile } from '../core/migration-dir';
import { environmentsBefore, reviewEnvironment, type EnvironmentReview, type LedgerReading } from '../core/promotion';
import { readAppliedState, type DatabasePools } from './db';

/** A CLI that cannot reach a database says so and goes on; it must not hang on it. */
const UP_FRONT_CONNECT_TIMEOUT_MS = 5_000;
const UP_FRONT_QUERY_TIMEOUT_MS = 10_000;

/** The environment's own ledger and every earlier one's (dbchange.yaml order): a worker must be able to read them all. */
export async function reviewPendingOn(config: DbChangeConfig, pools: DatabasePools, files: MigrationFile[], environment: EnvironmentConfig): Promise<EnvironmentReview<MigrationFile>> {
  const earlier = environmentsBefore(config.environments, environment.name);
  const [own, ...before] = await Promise.all([environment, ...earlier].map((item) => readAppliedState(pools.pool(item))));
  return reviewEnvironment(
    files,
    environment.name,
    own,
    earlier.map((item, index) => ({ environment: item.name, state: before[index] })),
  );
}

/** Every configured environment's ledger that this process can read; the others name why not (a variable not set here, no connection). */
export async function readLedgersUpFront(environments: EnvironmentConfig[]): Promise<LedgerReading[]> {
  return Promise.all(
    environments.map(async (environment): Promise<LedgerReading> => {
      if (!environment.databaseUrl) {
        return { environment: environment.name, unreadable: `${environment.missingVariables.map((name) => `\${${name}}`).join(', ')} not set here` };
      }
      const client = new pg.Client({
        connectionString: environment.databaseUrl,
        application_name: 'dbchange',
        connectionTimeoutMillis: UP_FRONT_CONNECT_TIMEOUT_MS,
        query_timeout: UP_FRONT_QUERY_TIMEOUT_MS,
      });
      // A connection lost after connect also emits 'error'; the pending query rejects with it.
      client.on('error', () => undefined);
      try {
        await client.connect();
        return { environment: environment.name, state: await readAppliedState(client) };
      } catch (error) {
        return { environment: environment.name, unreadable: unreadableReason(error) };
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
