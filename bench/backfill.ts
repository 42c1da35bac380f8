// Backfill: one data change over a big table while 8 clients read and write it, three ways: a single UPDATE, a
// fixed batch loop (pgroll's approach), and dbchange's backfill; plus how fast a pause condition stops and resumes it.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APP_CLIENTS, startAppTraffic } from './lib/app-traffic';
import { readBackfillStatus, startBackfill } from '../cli/backfill-client';
import type { BackfillStatus } from '../core/backfill-status';
import { parseConfig } from '../core/config';
import { createDatabase, withClient } from './lib/databases';
import type { BenchResult } from './lib/result';
import type { BenchSettings } from './lib/settings';
import { percentile, round } from './lib/stats';
import type { BenchServers, BenchTemporal } from './lib/temporal';

const LOOP_BATCH = 1_000;
const LOOP_DELAY_MS = 20;
const TARGET_BATCH = '200ms';
/** When the pause condition is switched on (progress of the key range), and how long it stays on. */
const PAUSE_AT_PERCENT = 40;
const PAUSE_HOLD_MS = 3_000;
const CHANGE = 'normalized = upper(payload)';
const METHODS = ['single UPDATE', `fixed batches (${LOOP_BATCH} rows, ${LOOP_DELAY_MS} ms delay)`, 'dbchange backfill'] as const;
type Method = (typeof METHODS)[number];


interface Run {
  method: Method;
  totalMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  appQueries: number;
  rowsLockedAtOnce: number;
  deadTuples: number;
  batches?: number;
  pause?: PauseTiming;
}

interface PauseTiming {
  /** From the condition turning true to the end of the batch that was running then (0 when none was). */
  stopMs: number;
  /** How long that batch took: the goal is to stop within one batch. */
  batchInFlightMs: number;
  /** From the condition turning false to the next batch's start. */
  resumeMs: number;
  condition: string;
}

export async function runBackfill(settings: BenchSettings, servers: BenchServers): Promise<BenchResult> {
  const runs: Run[] = [];
  for (const method of METHODS) {
    const run = await measure(method, settings, servers.fast);
    runs.push(run);
    console.error(`backfill: ${method}: ${round(run.totalMs / 1000, 1)} s, app p50 ${run.p50Ms} p99 ${run.p99Ms} max ${run.maxMs} ms over ${run.appQueries} queries, ${run.rowsLockedAtOnce} rows locked at once, ${run.deadTuples} dead tuples after${run.pause ? `; pause stop ${run.pause.stopMs} ms (batch ${run.pause.batchInFlightMs} ms), resume ${run.pause.resumeMs} ms` : ''}`);
  }
  const ours = runs[2];
  const pause = ours.pause!;
  return {
    name: 'backfill',
    title: 'Backfill',
    setup: [
      `A table of ${settings.backfillRows.toLocaleString('en-US')} rows (\`id bigint\` key, an md5 \`payload\`); the change sets \`${CHANGE}\` on every row while ${APP_CLIENTS} clients each read a random row by id (3 of 4 queries) or update one (\`v = v + 1\`), 2 ms apart. One run per method, each on a fresh copy of the table; app latency over the change's whole duration.`,
      `Rows locked at once: the rows one transaction of the change updated (a single UPDATE: all; a batch: its rows; dbchange: the largest batch in its ledger). Dead tuples: \`n_dead_tup\` 2 s after the change ended, autovacuum on (its default settings).`,
      `dbchange: \`targetBatchDuration: ${TARGET_BATCH}\`, no row limit, \`pauseWhen: { query: SELECT paused FROM bench_flags }\`, on the dev server with FAST_DISPATCH and an in-process worker. At ${PAUSE_AT_PERCENT}% of the key range the flag is set for ${PAUSE_HOLD_MS / 1000} s (its total time includes that pause): stop = from the flag's commit to the end of the batch running then; resume = from the flag's reset to the next batch's start (the condition is read again 1 s after it held, then ×1.5 up to 30 s).`,
    ].join(' '),
    reps: 1,
    columns: ['total time (s)', 'app p50 (ms)', 'app p99 (ms)', 'app longest (ms)', 'rows locked at once', 'dead tuples after'],
    rows: runs.map((run) => ({
      method: run.method,
      medians: {
        'total time (s)': round(run.totalMs / 1000, 1),
        'app p50 (ms)': run.p50Ms,
        'app p99 (ms)': run.p99Ms,
        'app longest (ms)': run.maxMs,
        'rows locked at once': run.rowsLockedAtOnce,
        'dead tuples after': run.deadTuples,
      },
    })),
    goals: [
      {
        goal: 'pause condition true → backfill stopped within one batch',
        measured: `${pause.stopMs} ms (the batch running then took ${pause.batchInFlightMs} ms; ${pause.condition})`,
        met: pause.stopMs <= pause.batchInFlightMs + 50,
        limitedBy: 'the condition is read before each batch, so the batch in flight finishes first',
      },
      {
        goal: `condition ended → backfill going on (measured; no goal set; after a ${PAUSE_HOLD_MS / 1000} s pause)`,
        measured: `${pause.resumeMs} ms`,
        met: true,
      },
    ],
    runs,
  };
}

async function measure(method: Method, settings: BenchSettings, temporal: BenchTemporal): Promise<Run> {
  const database = await createDatabase(settings.adminUrl, 'backfill');
  try {
    console.error(`backfill: ${method}: creating ${settings.backfillRows.toLocaleString('en-US')} rows`);
    await createItems(database.url, settings.backfillRows);
    const app = await startAppTraffic(database.url, (client, n, index) => {
      const id = 1 + Math.floor(Math.random() * settings.backfillRows);
      return (n + index) % 4 === 0 ? client.query('UPDATE items SET v = v + 1 WHERE id = $1', [id]) : client.query('SELECT v, payload FROM items WHERE id = $1', [id]);
    });
    await sleep(1_000);
    const started = performance.now();
    const outcome = await change(method, database.url, temporal);
    const ended = performance.now();
    const samples = app.stop().filter((sample) => sample.end >= started && sample.start <= ended);
    await app.done;
    await sleep(2_000);
    const dead = await withClient(database.url, (client) => client.query<{ dead: string }>("SELECT n_dead_tup AS dead FROM pg_stat_user_tables WHERE relname = 'items'"));
    const durations = samples.map((sample) => sample.end - sample.start);
    const changed = await withClient(database.url, (client) => client.query<{ left: string }>('SELECT count(*) AS left FROM items WHERE normalized IS DISTINCT FROM upper(payload)'));
    if (Number(changed.rows[0].left) !== 0) throw new Error(`${method} left ${changed.rows[0].left} rows unchanged`);
    return {
      method,
      totalMs: round(ended - started),
      p50Ms: round(percentile(durations, 50), 1),
      p99Ms: round(percentile(durations, 99), 1),
      maxMs: round(durations.reduce((most, duration) => Math.max(most, duration), 0), 1),
      appQueries: durations.length,
      deadTuples: Number(dead.rows[0].dead),
      ...outcome,
    };
  } finally {
    await database.drop();
  }
}

async function createItems(url: string, rows: number): Promise<void> {
  await withClient(url, async (client) => {
    await client.query('CREATE TABLE items (id bigint PRIMARY KEY, account_id int NOT NULL, v int NOT NULL DEFAULT 0, payload text NOT NULL, normalized text)');
    await client.query('INSERT INTO items (id, account_id, payload) SELECT g, g % 1000, md5(g::text) FROM generate_series(1, $1) g', [rows]);
    await client.query('VACUUM ANALYZE items');
    await client.query('CREATE TABLE bench_flags AS SELECT false AS paused');
  });
}

async function change(method: Method, url: string, temporal: BenchTemporal): Promise<Pick<Run, 'rowsLockedAtOnce' | 'batches' | 'pause'>> {
  if (method === 'single UPDATE') {
    const updated = await withClient(url, (client) => client.query(`UPDATE items SET ${CHANGE}`));
    return { rowsLockedAtOnce: updated.rowCount ?? 0, batches: 1 };
  }
  if (method === 'dbchange backfill') return runDbchangeBackfill(url, temporal);
  return withClient(url, async (client) => {
    const bounds = await client.query<{ low: string; high: string }>('SELECT min(id) AS low, max(id) AS high FROM items');
    let most = 0;
    let batches = 0;
    for (let start = Number(bounds.rows[0].low); start <= Number(bounds.rows[0].high); start += LOOP_BATCH) {
      const updated = await client.query(`UPDATE items SET ${CHANGE} WHERE id >= $1 AND id < $2`, [start, start + LOOP_BATCH]);
      most = Math.max(most, updated.rowCount ?? 0);
      batches++;
      await sleep(LOOP_DELAY_MS);
    }
    return { rowsLockedAtOnce: most, batches };
  });
}

async function runDbchangeBackfill(url: string, temporal: BenchTemporal): Promise<Pick<Run, 'rowsLockedAtOnce' | 'batches' | 'pause'>> {
  const dir = mkdtempSync(join(tmpdir(), 'dbchange-bench-backfill-'));
  try {
    mkdirSync(join(dir, 'db/post_migrate'), { recursive: true });
    mkdirSync(join(dir, 'db/backfills'), { recursive: true });
    writeFileSync(join(dir, 'db/backfills/20241104120000_normalize_items.yaml'), [
      'table: items',
      'key: id',
      `batch: UPDATE items SET ${CHANGE} WHERE id >= :start AND id < :end`,
      `targetBatchDuration: ${TARGET_BATCH}`,
      'pauseWhen:',
      '  query: SELECT paused FROM bench_flags',
      '',
    ].join('\n'));
    const yaml = ['migrations:', '  postDeploy: db/post_migrate', '  backfills: db/backfills', 'environments:', '  - name: bench', `    databaseUrl: ${url}`, 'approvers:', '  alice: [release-manager]', ''].join('\n');
    writeFileSync(join(dir, 'dbchange.yaml'), yaml);
    const config = parseConfig(yaml, join(dir, 'dbchange.yaml'), {}, dir);
    const worker = await temporal.startWorker(config);
    try {
      const workflowId = await startBackfill(temporal.client, config, { name: 'normalize_items', environment: 'bench', requestedBy: 'bench', taskQueue: worker.taskQueue });
      const result = temporal.client.workflow.getHandle(workflowId).result() as Promise<BackfillStatus>;
      const pauseWindow = await pauseOnce(url, () => readBackfillStatus(temporal.client, 'bench', 'normalize_items'));
      const final = await result;
      if (final.state !== 'finished') throw new Error(`the backfill ended ${final.state}: ${final.summary}`);
      const ledger = await withClient(url, (client) => client.query<{ most: string; batches: string }>("SELECT max(rows) AS most, count(*) AS batches FROM dbchange_backfill_batches WHERE backfill = 'normalize_items'"));
      return { rowsLockedAtOnce: Number(ledger.rows[0].most), batches: Number(ledger.rows[0].batches), pause: await pauseTiming(url, pauseWindow) };
    } finally {
      await worker.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Sets the pause flag at PAUSE_AT_PERCENT, waits until the status says which condition holds, then resets it. */
async function pauseOnce(url: string, status: () => Promise<BackfillStatus>): Promise<{ on: Date; off: Date; condition: string }> {
  for (;;) {
    const now = await status().catch(() => undefined);
    if ((now?.progress?.percent ?? 0) >= PAUSE_AT_PERCENT) break;
    await sleep(50);
  }
  const on = await flip(url, true);
  let condition = '';
  for (;;) {
    const now = await status();
    if (now.paused?.by === 'condition') {
      condition = now.paused.text;
      break;
    }
    await sleep(50);
  }
  await sleep(Math.max(0, PAUSE_HOLD_MS - (Date.now() - on.getTime())));
  const off = await flip(url, false);
  return { on, off, condition };
}

/** Sets the flag and returns the database's clock once the change committed (the ledger's clock). */
async function flip(url: string, paused: boolean): Promise<Date> {
  return withClient(url, async (client) => {
    await client.query('UPDATE bench_flags SET paused = $1', [paused]);
    return (await client.query<{ at: Date }>('SELECT clock_timestamp() AS at')).rows[0].at;
  });
}

async function pauseTiming(url: string, window: { on: Date; off: Date; condition: string }): Promise<PauseTiming> {
  return withClient(url, async (client) => {
    // Batches by their SQL's start and end on the database's clock (finished_at is clock_timestamp() at its end).
    const batches = `SELECT finished_at - make_interval(secs => duration_ms / 1000.0) AS began, finished_at AS ended, duration_ms FROM dbchange_backfill_batches WHERE backfill = 'normalize_items'`;
    const inFlight = await client.query<{ ended: Date; duration_ms: number }>(`SELECT ended, duration_ms FROM (${batches}) b WHERE began <= $1 AND ended >= $1 ORDER BY ended DESC LIMIT 1`, [window.on]);
    const after = await client.query<{ began: Date }>(`SELECT began FROM (${batches}) b WHERE began >= $1 ORDER BY began LIMIT 1`, [window.off]);
    const during = await client.query<{ n: string }>(`SELECT count(*) AS n FROM (${batches}) b WHERE began > $1 AND began < $2`, [inFlight.rows[0]?.ended ?? window.on, window.off]);
    if (Number(during.rows[0].n) > 0) throw new Error(`${during.rows[0].n} batches began while the pause condition held`);
    return {
      stopMs: inFlight.rows[0] ? Math.max(0, inFlight.rows[0].ended.getTime() - window.on.getTime()) : 0,
      batchInFlightMs: inFlight.rows[0]?.duration_ms ?? 0,
      resumeMs: after.rows[0] ? after.rows[0].began.getTime() - window.off.getTime() : -1,
      condition: window.condition,
    };
  });
}


function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
