// The dbchange demo: embedded PostgreSQL with staging and production (a main and a ci database each), a Temporal dev server with its UI, a worker,
// and one post-deploy migration pipeline from start to finish, approved from "chat" with the Temporal CLI.
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { startBackfill } from '../../cli/backfill-client';
import { startPipeline } from '../../cli/pipeline-client';
import { describeBackfillStatus, type BackfillStatus } from '../../core/backfill-status';
import { snapshotLines } from '../../cli/snapshot-text';
import type { DbChangeConfig } from '../../core/config';
import { loadConfig } from '../../core/config-file';
import { readMigrationDir } from '../../core/migration-dir';
import { FAST_DISPATCH, startDevServer } from '../../worker/dev-server';
import { temporalCliPath } from '../../worker/temporal-cli';
import { taskQueue } from '../../worker/temporal';
import { createDbChangeWorker } from '../../worker/worker';
import { approveFromChat } from './chat-approval';
import { applyRegularMigrations, missingVersions, runSqlFile } from './deploy';
import { startEmbeddedPostgres } from './embedded-db';
import { followPipeline } from './follow';
import { freePort } from './ports';

// Compiled code runs from dist/examples/demo, sources from examples/demo: both find the repository root.
const ROOT = resolve(__dirname, '../..', __dirname.includes('/dist/') ? '..' : '');
const EXAMPLE_DIR = resolve(ROOT, 'examples');
const DATA_DIR = resolve(ROOT, '.dbchange/demo-pg');
const ENVIRONMENTS = ['staging', 'production'];
/** Each environment is decomposed like GitLab's: a main and a ci database (examples/dbchange.yaml). */
const DATABASES = ENVIRONMENTS.flatMap((environment) => ['main', 'ci'].map((database) => ({ environment, database, name: `${environment}_${database}` })));
/** The application's rows live in the ci database; main has the same schema (DDL runs on both). */
const DATA_DATABASE = 'ci';
const PREFERRED_PORTS = { postgres: 54329, temporal: 7233, ui: 8233 };
const REQUESTED_BY = 'dave';
/** examples/db/backfills: the copy the foreign key migration requires (`-- dbchange:requires-backfill`). */
const BACKFILL = 'backfill_ci_runners_e59bb2812d';
const PACKAGE_VERSION = '16.6.202401151200';
const CHAT_APPROVALS = [
  { user: 'bob', role: 'release-manager', comment: 'lgtm' },
  { user: 'alice', role: 'release-manager', comment: 'staging QA is green; go ahead with production' },
];
const EXIT_INTERRUPTED = 130;
const USAGE = `usage: npm run demo [-- --keep-running]

Runs one post-deploy migration pipeline of the example project (examples/) end to end on embedded PostgreSQL
and a local Temporal dev server. --keep-running (or DBCHANGE_DEMO_KEEP=1) leaves them and the UI up until Ctrl-C.`;

const say = (line: string) => process.stderr.write(`${line}\n`);
/** The dev server's address, for the hint printed when the demo stays up. */
let demoAddress = '127.0.0.1:7233';
const cleanups: { name: string; run: () => Promise<void> }[] = [];
/** Aborted by Ctrl-C (or SIGTERM): the demo stops at the next step and shuts down what it started. */
const interrupt = new AbortController();

/** Registers how to stop something just started, then stops the demo here if it was interrupted meanwhile. */
function started<T>(name: string, thing: T, stop: (thing: T) => Promise<void>): T {
  cleanups.push({ name, run: () => stop(thing) });
  interrupt.signal.throwIfAborted();
  return thing;
}

async function runDemo(): Promise<number> {
  const startedAt = Date.now();
  requirePsql();
  const ports = await choosePorts();

  say(`postgres: starting embedded PostgreSQL on 127.0.0.1:${ports.postgres}`);
  const names = DATABASES.map((database) => database.name);
  const postgres = started('PostgreSQL', await startEmbeddedPostgres({ dataDir: DATA_DIR, port: ports.postgres, databases: names }), (db) => db.remove());
  say(`postgres: ready, data in ${postgres.dataDir} (removed when the demo ends)`);
  for (const name of names) process.env[`${name.toUpperCase()}_DATABASE_URL`] = postgres.urlOf(name);
  const config = loadConfig(resolve(EXAMPLE_DIR, 'dbchange.yaml'));
  for (const { environment, database, name } of DATABASES) {
    const url = postgres.urlOf(name);
    const versions = await applyRegularMigrations(url, config.migrations.regular!);
    if (database === DATA_DATABASE) await runSqlFile(url, resolve(EXAMPLE_DIR, 'db/seed.sql'));
    say(`deploy: ${environment}/${database}: ${versions.length} regular migrations applied${database === DATA_DATABASE ? ', application data loaded' : ''}`);
  }

  const server = started('Temporal dev server', await startDevServer({ port: ports.temporal, uiPort: ports.ui, quiet: true, dynamicConfig: FAST_DISPATCH }), (dev) => dev.stop());
  demoAddress = server.address;
  say(`temporal: dev server at ${server.address}, UI at ${server.uiUrl}`);
  const worker = await startWorker(server.address, config);
  const connection = started('Temporal client', await Connection.connect({ address: server.address }), (client) => client.close());
  const client = new Client({ connection, namespace: 'default' });

  const postDeploy = readMigrationDir(config.migrations.postDeploy).map((migration) => migration.version);
  const handle = await startPipeline(client, config, { requestedBy: REQUESTED_BY, packageVersion: PACKAGE_VERSION, taskQueue: taskQueue() });
  say(`pipeline: ${REQUESTED_BY} started ${handle.workflowId} for package ${PACKAGE_VERSION} (${postDeploy.length} post-deploy migrations)`);
  const result = await Promise.race([
    followPipeline(client, handle, {
      signal: interrupt.signal,
      print: (line) => say(`pipeline: ${line}`),
      onApprovalWait: () => approveInChat(server.address, handle.workflowId),
      onBackfillWait: (snapshot) => runBackfill(client, config, snapshot.environment!.split('/')[0]),
    }),
    worker.stopped.then(() => Promise.reject(new Error('the worker stopped before the pipeline ended'))),
  ]);

  console.log(`\n${snapshotLines(handle.workflowId, result).join('\n')}\n`);
  let complete = result.stage === 'complete';
  for (const { environment, database, name } of DATABASES) {
    const missing = await missingVersions(postgres.urlOf(name), postDeploy);
    console.log(`check: ${environment}/${database}: schema_migrations has ${postDeploy.length - missing.length} of ${postDeploy.length} post-deploy versions${missing.length > 0 ? `; missing ${missing.join(', ')}` : ''}`);
    complete &&= missing.length === 0;
  }
  console.log(`\nsee it in the Temporal UI: ${server.uiUrl}/namespaces/default/workflows/${handle.workflowId}`);
  say(`demo ${complete ? 'succeeded' : 'FAILED'} in ${((Date.now() - startedAt) / 1000).toFixed(1)}s`);
  return complete ? 0 : 1;
}

async function choosePorts(): Promise<typeof PREFERRED_PORTS> {
  const postgres = await freePort(PREFERRED_PORTS.postgres);
  const temporal = await freePort(PREFERRED_PORTS.temporal, [postgres]);
  const ui = await freePort(PREFERRED_PORTS.ui, [postgres, temporal]);
  const ports = { postgres, temporal, ui };
  for (const [name, port] of Object.entries(ports)) {
    const preferred = PREFERRED_PORTS[name as keyof typeof PREFERRED_PORTS];
    if (port !== preferred) say(`ports: ${preferred} (${name}) is in use; using ${port} instead`);
  }
  return ports;
}

/** Runs a worker in this process; `stopped` settles when it stops. */
async function startWorker(address: string, config: DbChangeConfig): Promise<{ stopped: Promise<void> }> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const connection = started('worker connection', await NativeConnection.connect({ address }), (native) => native.close());
  const { worker, close } = await createDbChangeWorker({ config, connection, namespace: 'default', taskQueue: taskQueue(), identity: 'dbchange-demo' });
  const running = worker.run();
  started('worker', worker, async () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running.finally(close);
  });
  return { stopped: running };
}

/** Seed 000 replayed: the foreign key waits on this environment until the runners' backfill finished there. */
async function runBackfill(client: Client, config: DbChangeConfig, environment: string): Promise<void> {
  const workflowId = await startBackfill(client, config, { name: BACKFILL, environment, requestedBy: REQUESTED_BY, taskQueue: taskQueue() });
  say(`backfill: ${REQUESTED_BY} started ${workflowId}`);
  const final = (await client.workflow.getHandle(workflowId).result()) as BackfillStatus;
  for (const line of describeBackfillStatus(final)) say(`backfill: ${line}`);
}

async function approveInChat(address: string, workflowId: string): Promise<void> {
  const cli = temporalCliPath();
  for (const approval of CHAT_APPROVALS) {
    const { command, answer } = await approveFromChat(cli, address, workflowId, approval);
    say(`chat: ${approval.user}: ${command}`);
    say(`chat: ${answer.accepted ? 'accepted' : 'refused'}: ${answer.reason}`);
  }
}

function requirePsql(): void {
  try {
    execFileSync('psql', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error('the example QA command (examples/qa/check.sh) needs psql: install the PostgreSQL client, e.g. apt-get install postgresql-client');
  }
}

/** Stops everything started, newest first; a failing step is reported and the rest still run. */
async function shutdown(): Promise<void> {
  for (const cleanup of cleanups.reverse()) {
    await cleanup.run().catch((error: unknown) => say(`shutdown: stopping the ${cleanup.name} failed: ${String(error)}`));
  }
}

async function main(): Promise<void> {
  if (process.argv.includes('--help')) {
    console.log(USAGE);
    return;
  }
  const keepRunning = process.argv.includes('--keep-running') || process.env.DBCHANGE_DEMO_KEEP === '1';
  const interrupted = new Promise<void>((resolveInterrupt) => interrupt.signal.addEventListener('abort', () => resolveInterrupt()));
  // Once per signal: a second Ctrl-C during shutdown ends the process at once.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => interrupt.abort(signal));

  const code = await runDemo().catch((error: unknown) => {
    if (interrupt.signal.aborted) return EXIT_INTERRUPTED;
    say(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  });
  if (code === EXIT_INTERRUPTED) say('demo: interrupted; shutting down');
  else if (keepRunning) {
    say('demo: PostgreSQL, the Temporal dev server, its UI and the worker stay up; press Ctrl-C to stop them');
    say(`demo: to run the change requests against it (README, "Change requests"), in another terminal:\n  export TEMPORAL_ADDRESS=${demoAddress} DBCHANGE_CONFIG=examples/dbchange.yaml`);
    await interrupted;
  }
  await shutdown();
  say('demo: everything it started is stopped');
  process.exit(code);
}

void main();
