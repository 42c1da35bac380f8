// Lock stall: 8 clients on a hot table, a transaction holding a conflicting lock, one DDL applied four ways.
import { spawn } from 'node:child_process';
import pg from 'pg';
import { APP_CLIENTS, startAppTraffic } from './lib/app-traffic';
import { startPipeline } from '../cli/pipeline-client';
import { createDatabase, migrationText, withClient, writeProject } from './lib/databases';
import type { BenchResult } from './lib/result';
import type { BenchSettings } from './lib/settings';
import { median, percentile, round } from './lib/stats';
import type { BenchServers, BenchTemporal } from './lib/temporal';

const LOCK_TIMEOUT_MS = 200;
const DDL = 'ALTER TABLE hot ADD COLUMN note text';
const FIXED_SLEEP_MS = 1_000;
/** Starts the DDL this long after the blocker took its lock, so every method meets it. */
const DDL_AFTER_BLOCKER_MS = 500;
/** GitLab's published with_lock_retries default schedule: [lock_timeout, sleep after a lock timeout] in seconds. */
const GITLAB_SCHEDULE_S: [number, number][] = [
  [0.1, 0.05], [0.1, 0.05], [0.2, 0.05], [0.3, 0.1], [0.4, 0.15], [0.5, 2], [0.5, 2], [0.5, 2], [0.5, 2], [1, 5], [1, 60],
  [0.1, 0.05], [0.1, 0.05], [0.2, 0.05], [0.3, 0.1], [0.4, 0.15], [0.5, 2], [0.5, 2], [0.5, 2], [3, 180],
];
const METHODS = ['dbchange', 'psql ALTER', `fixed-sleep retry (${LOCK_TIMEOUT_MS} ms / ${FIXED_SLEEP_MS} ms)`, 'GitLab with_lock_retries schedule'] as const;
type Method = (typeof METHODS)[number];

interface Run {
  method: Method;
  rep: number;
  longestMs: number;
  p99Ms: number;
  queries: number;
  commitAfterBlockerMs: number;
}

export async function runLockStall(settings: BenchSettings, servers: BenchServers): Promise<BenchResult> {
  // Its figures do not depend on how fast the server dispatches tasks: the dev server as it comes.
  const temporal = servers.standard;
  const runs: Run[] = [];
  for (let rep = 1; rep <= settings.reps; rep++) {
    for (const method of METHODS) {
      const run = await measure(method, rep, settings, temporal);
      runs.push(run);
      console.error(`lock-stall: ${method} rep ${rep}: longest ${run.longestMs} ms, p99 ${run.p99Ms} ms over ${run.queries} queries, commit ${run.commitAfterBlockerMs} ms after the blocker`);
    }
  }
  const rows = METHODS.map((method) => {
    const mine = runs.filter((run) => run.method === method);
    return {
      method,
      medians: {
        'longest app query (ms)': round(median(mine.map((run) => run.longestMs))),
        'p99 app query (ms)': round(median(mine.map((run) => run.p99Ms))),
        'commit after blocker ends (ms)': round(median(mine.map((run) => run.commitAfterBlockerMs))),
      },
    };
  });
  const ours = rows[0].medians;
  return {
    name: 'lock-stall',
    title: 'Lock stall',
    setup: `${APP_CLIENTS} clients run SELECT/INSERT on a hot table; a transaction holds ACCESS SHARE for ${settings.blockerMs / 1000} s; \`${DDL}\` is applied ${DDL_AFTER_BLOCKER_MS} ms after it begins. lock_timeout ${LOCK_TIMEOUT_MS} ms for dbchange and the fixed-sleep loop. App latency is measured from the DDL's start to 1 s after its commit; the commit is seen by a 10 ms catalog poll.`,
    reps: settings.reps,
    columns: Object.keys(ours),
    rows,
    goals: [
      {
        goal: `dbchange longest stall ≤ lock_timeout + 100 ms (${LOCK_TIMEOUT_MS + 100} ms)`,
        measured: `${ours['longest app query (ms)']} ms`,
        met: ours['longest app query (ms)'] <= LOCK_TIMEOUT_MS + 100,
        limitedBy: 'queries queue behind each lock attempt for up to lock_timeout',
      },
      {
        goal: 'dbchange commit ≤ 1 s after the blocker ends',
        measured: `${ours['commit after blocker ends (ms)']} ms`,
        met: ours['commit after blocker ends (ms)'] <= 1_000,
        limitedBy: 'the applier polls the blocking session every 50 ms before it tries again',
      },
    ],
    runs,
  };
}

async function measure(method: Method, rep: number, settings: BenchSettings, temporal: BenchTemporal): Promise<Run> {
  const database = await createDatabase(settings.adminUrl, 'lock');
  try {
    await withClient(database.url, (client) => client.query('CREATE TABLE hot (id serial PRIMARY KEY, v int NOT NULL); INSERT INTO hot (v) SELECT g FROM generate_series(1, 10000) g'));
    const app = await startAppTraffic(database.url, (client, n, index) =>
      (n + index) % 4 === 0 ? client.query('INSERT INTO hot (v) VALUES ($1)', [n]) : client.query('SELECT v FROM hot WHERE id = $1', [1 + ((n * 7919 + index) % 10_000)]),
    );
    const blocker = new pg.Client({ connectionString: database.url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('SELECT count(*) FROM hot');
    const blockerDone = sleep(settings.blockerMs).then(async () => {
      await blocker.query('COMMIT');
      return performance.now();
    });
    await sleep(DDL_AFTER_BLOCKER_MS);
    const ddlStarted = performance.now();
    const committed = waitForColumn(database.url);
    const applied = apply(method, database.url, temporal);
    const committedAt = await committed;
    await applied;
    const blockerEndedAt = await blockerDone;
    await sleep(1_000);
    const samples = app.stop().filter((sample) => sample.end >= ddlStarted && sample.start <= committedAt + 1_000);
    await app.done;
    await blocker.end();
    const durations = samples.map((sample) => sample.end - sample.start);
    return {
      method,
      rep,
      longestMs: round(Math.max(...durations), 1),
      p99Ms: round(percentile(durations, 99), 1),
      queries: durations.length,
      commitAfterBlockerMs: round(committedAt - blockerEndedAt),
    };
  } finally {
    await database.drop();
  }
}

async function apply(method: Method, url: string, temporal: BenchTemporal): Promise<void> {
  if (method === 'dbchange') return applyWithDbchange(url, temporal);
  if (method === 'psql ALTER') return runPsql(url, DDL);
  if (method.startsWith('fixed-sleep')) return retryWithSchedule(url, () => [LOCK_TIMEOUT_MS, FIXED_SLEEP_MS]);
  return retryWithSchedule(url, (attempt) => {
    const entry = GITLAB_SCHEDULE_S[attempt];
    return entry ? [entry[0] * 1000, entry[1] * 1000] : undefined;
  });
}

async function applyWithDbchange(url: string, temporal: BenchTemporal): Promise<void> {
  const project = writeProject('bench-lock', url, { '20240101000001_add_note.sql': migrationText(`${DDL};`) }, `${LOCK_TIMEOUT_MS}ms`);
  const worker = await temporal.startWorker(project.config);
  try {
    // Worker start-up is not part of the change; the pipeline starts now.
    const handle = await startPipeline(temporal.client, project.config, { requestedBy: 'bench', taskQueue: worker.taskQueue });
    const result = await handle.result();
    if (result.stage !== 'complete') throw new Error(`dbchange pipeline ended ${result.stage}: ${result.summary}`);
  } finally {
    await worker.stop();
    project.cleanup();
  }
}

/**
 * A retry loop in the style release engineers write: each attempt in its own transaction with lock_timeout set;
 * on a lock timeout, sleep and try again. When `schedule` runs out, one last attempt waits without a timeout.
 */
async function retryWithSchedule(url: string, schedule: (attempt: number) => [number, number] | undefined): Promise<void> {
  await withClient(url, async (client) => {
    for (let attempt = 0; ; attempt++) {
      const step = schedule(attempt);
      try {
        await client.query('BEGIN');
        await client.query(`SET LOCAL lock_timeout = ${step ? Math.round(step[0]) : 0}`);
        await client.query(DDL);
        await client.query('COMMIT');
        return;
      } catch (error) {
        await client.query('ROLLBACK');
        if ((error as { code?: string }).code !== '55P03' || !step) throw error;
        await sleep(step[1]);
      }
    }
  });
}

function runPsql(url: string, sql: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('psql', [url, '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`psql exited ${code}: ${stderr}`))));
  });
}



/** Resolves with the moment the new column is visible to another session, i.e. the DDL committed. */
async function waitForColumn(url: string): Promise<number> {
  return withClient(url, async (client) => {
    for (;;) {
      const found = await client.query(`SELECT 1 FROM pg_attribute WHERE attrelid = 'hot'::regclass AND attname = 'note'`);
      if ((found.rowCount ?? 0) > 0) return performance.now();
      await sleep(10);
    }
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
