import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlBackfill, readBackfillStatus, startBackfill } from '../../cli/backfill-client';
import type { BackfillStatus } from '../../core/backfill-status';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../examples/demo/embedded-db';
import { assertBuilt, stopWorkerProcesses, type CliTarget, type WorkerProcess } from '../helpers/processes';
import { ADMIN_URL, query } from '../helpers/postgres';
import { createProject, type TestProject } from '../helpers/project';
import { createStack, eventually, replayWorkflows, type Stack } from '../helpers/stack';
import { faultSeed, freePort, seededRandom, sleep, startPrebundledWorker, writeBundle } from './fault-helpers';

const KILLS = 10;
/** Each batch sleeps this long inside its transaction, so a kill often lands mid-batch. */
const BATCH_SLEEP_S = 0.4;
const ROWS = 1_200;
/** One statement: the sleep, then the update that counts each row's runs. */
/** The sleep is per batch, whatever its size: a target above it lets batches grow to maxBatchSize and stay there. */
const sleepingBackfill = (sleepS: number, maxBatchSize: number) =>
  [
    'table: bf_rows',
    'key: id',
    `batch: WITH pause AS (SELECT pg_sleep(${sleepS})) UPDATE bf_rows SET runs = runs + 1 FROM pause WHERE id >= :start AND id < :end`,
    `targetBatchDuration: ${Math.round(sleepS * 2_000)}ms`,
    `maxBatchSize: ${maxBatchSize}`,
  ].join('\n');

async function createRows(url: string, rows: number): Promise<void> {
  await query(url, 'CREATE TABLE bf_rows (id bigint PRIMARY KEY, runs int NOT NULL DEFAULT 0)');
  await query(url, 'INSERT INTO bf_rows (id) SELECT generate_series(1, $1)', [rows]);
}

/** Rows by how many times a batch updated them: exactly once is `[{ runs: 1, rows: ROWS }]`. */
async function runsPerRow(url: string): Promise<{ runs: number; rows: number }[]> {
  return query(url, 'SELECT runs, count(*)::int AS rows FROM bf_rows GROUP BY runs ORDER BY runs');
}

/** The backend running a batch of this database now, if any. */
async function batchInFlight(url: string): Promise<boolean> {
  const database = new URL(url).pathname.slice(1);
  const rows = await query(ADMIN_URL, `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND query LIKE '%UPDATE bf_rows SET runs%' AND pid <> pg_backend_pid()`, [database]);
  return rows.length > 0;
}

describe('backfill faults', () => {
  let stack: Stack;
  let project: TestProject;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    assertBuilt();
    stack = await createStack();
    project = await createProject('bffault', {
      environments: [{ name: 'bfkill' }, { name: 'bfpause' }],
      migrations: {},
      backfills: { '20241104120000_sleepy_rows.yaml': sleepingBackfill(BATCH_SLEEP_S, 100), '20241104120001_slow_rows.yaml': sleepingBackfill(1.5, 100) },
    });
    await createRows(project.urls.bfkill, ROWS);
    await createRows(project.urls.bfpause, 500);
  });
  afterAll(async () => {
    await stopWorkerProcesses(workers, 5_000);
    await stack?.close();
    await project?.cleanup();
  });

  it(`updates every row exactly once across ${KILLS} seeded SIGKILLs of the worker running a batch`, { timeout: 300_000 }, async () => {
    const seed = faultSeed();
    const random = seededRandom(seed);
    console.info(`backfill kills: seed ${seed} (replay with DBCHANGE_FAULT_SEED=${seed})`);
    const target: CliTarget = { address: stack.address, taskQueue: stack.newTaskQueue(), configPath: project.configPath };
    const bundle = writeBundle(stack);
    const live: WorkerProcess[] = await Promise.all([startPrebundledWorker(target, bundle), startPrebundledWorker(target, bundle)]);
    workers.push(...live);
    const workflowId = await startBackfill(stack.client, project.config, { name: 'sleepy_rows', environment: 'bfkill', requestedBy: 'dave', taskQueue: target.taskQueue });
    const handle = stack.client.workflow.getHandle(workflowId);
    const result = handle.result() as Promise<BackfillStatus>;
    result.catch(() => undefined);

    let killsMidBatch = 0;
    for (let kill = 1; kill <= KILLS; kill++) {
      // The worker whose batch runs in PostgreSQL now, killed a random moment into it.
      const running = await eventually(async () => {
        const pending = (await handle.describe()).raw.pendingActivities ?? [];
        const batch = pending.find((activity) => activity.activityType?.name === 'runBackfillBatch' && activity.lastStartedTime);
        const pid = Number.parseInt(batch?.lastWorkerIdentity ?? '', 10);
        const worker = live.find((candidate) => candidate.pid === pid);
        return worker && (await batchInFlight(project.urls.bfkill)) && worker;
      }, `a batch to run before kill ${kill}`, 60_000, 50);
      await sleep(Math.round(random() * BATCH_SLEEP_S * 800));
      if (await batchInFlight(project.urls.bfkill)) killsMidBatch++;
      await running.kill('SIGKILL');
      live.splice(live.indexOf(running), 1);
      const replacement = await startPrebundledWorker(target, bundle);
      workers.push(replacement);
      live.push(replacement);
    }

    const final = await result;
    console.info(`backfill kills: ${KILLS} kills, ${killsMidBatch} while a batch ran in PostgreSQL; ${final.progress?.batchesDone} batches`);
    expect(final.state).toBe('finished');
    expect(killsMidBatch).toBeGreaterThanOrEqual(KILLS / 2);
    expect(await runsPerRow(project.urls.bfkill)).toEqual([{ runs: 1, rows: ROWS }]);
    // The ledger covers the key range once, without gaps or overlaps.
    expect(await query(project.urls.bfkill, `SELECT sum(rows)::int AS rows, min(batch_start)::int AS first, max(batch_end)::int AS past,
        sum(batch_end - batch_start)::int AS covered FROM dbchange_backfill_batches WHERE backfill = 'sleepy_rows'`)).toEqual([{ rows: ROWS, first: 1, past: ROWS + 1, covered: ROWS }]);
    expect(await replayWorkflows(stack, [workflowId])).toBeGreaterThanOrEqual(1);
  });

  it('a pause sent during a batch lets that batch commit, runs nothing more until resume, and applies each row once', { timeout: 120_000 }, async () => {
    const taskQueue = stack.newTaskQueue();
    await stack.startWorker(project.config, taskQueue);
    const workflowId = await startBackfill(stack.client, project.config, { name: 'slow_rows', environment: 'bfpause', requestedBy: 'dave', taskQueue });
    await eventually(() => batchInFlight(project.urls.bfpause), 'the first batch to run', 30_000, 50);
    expect(await controlBackfill(stack.client, 'bfpause', 'slow_rows', 'pause', { user: 'alice' })).toMatchObject({ accepted: true });
    // The batch in flight finishes and is recorded (in the ledger, then in the workflow's status); nothing starts after it.
    const ledgerBatches = async () => (await query<{ batches: number }>(project.urls.bfpause, "SELECT count(*)::int AS batches FROM dbchange_backfill_batches WHERE backfill = 'slow_rows'"))[0].batches;
    const paused = await eventually(async () => {
      const status = await readBackfillStatus(stack.client, 'bfpause', 'slow_rows');
      const settled = status.paused?.by === 'person' && !(await batchInFlight(project.urls.bfpause)) && status.progress?.batchesDone === (await ledgerBatches());
      return settled && status;
    }, 'the pause to take effect and the batch in flight to be recorded', 30_000, 100);
    const batchesAtPause = paused.progress!.batchesDone;
    expect(batchesAtPause).toBeGreaterThanOrEqual(1);
    const ledgerAtPause = await query(project.urls.bfpause, "SELECT count(*)::int AS batches FROM dbchange_backfill_batches WHERE backfill = 'slow_rows'");
    expect(ledgerAtPause).toEqual([{ batches: batchesAtPause }]);
    await sleep(3_000);
    expect(await query(project.urls.bfpause, "SELECT count(*)::int AS batches FROM dbchange_backfill_batches WHERE backfill = 'slow_rows'")).toEqual(ledgerAtPause);

    // Resume while the next batch would run, then pause and resume again during one.
    expect(await controlBackfill(stack.client, 'bfpause', 'slow_rows', 'resume', { user: 'alice' })).toMatchObject({ accepted: true });
    await eventually(() => batchInFlight(project.urls.bfpause), 'a batch to run after resume', 30_000, 50);
    expect(await controlBackfill(stack.client, 'bfpause', 'slow_rows', 'pause', { user: 'carol' })).toMatchObject({ accepted: true });
    expect(await controlBackfill(stack.client, 'bfpause', 'slow_rows', 'resume', { user: 'carol' })).toMatchObject({ accepted: true });
    const final = await stack.client.workflow.getHandle(workflowId).result() as BackfillStatus;
    expect(final.state).toBe('finished');
    expect(await runsPerRow(project.urls.bfpause)).toEqual([{ runs: 1, rows: 500 }]);
    expect(final.decisions.map((decision) => `${decision.kind} ${decision.user} ${decision.accepted}`)).toEqual(['pause alice true', 'resume alice true', 'pause carol true', 'resume carol true']);
  });
});

describe('a PostgreSQL restart mid-backfill (a throwaway server, never the shared one)', () => {
  let stack: Stack;
  let project: TestProject;
  let cluster: EmbeddedPostgres;
  let dataDir: string;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    assertBuilt();
    stack = await createStack();
    dataDir = mkdtempSync(join(tmpdir(), 'dbchange-bfrestart-'));
    cluster = await startEmbeddedPostgres({ dataDir: join(dataDir, 'data'), port: await freePort() });
    project = await createProject('bfrestart', {
      environments: [{ name: 'bfrestart-env' }],
      migrations: {},
      backfills: { '20241104120000_sleepy_rows.yaml': sleepingBackfill(0.3, 100) },
      adminUrl: cluster.urlOf('postgres'),
    });
    await createRows(project.urls['bfrestart-env'], 1_500);
  });
  afterAll(async () => {
    await stopWorkerProcesses(workers, 5_000);
    await stack?.close();
    await project?.cleanup().catch(() => undefined);
    await cluster?.remove().catch(() => undefined);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('holds while PostgreSQL is down, then goes on and updates each row once', { timeout: 180_000 }, async () => {
    const url = project.urls['bfrestart-env'];
    const target: CliTarget = { address: stack.address, taskQueue: stack.newTaskQueue(), configPath: project.configPath };
    workers.push(await startPrebundledWorker(target, writeBundle(stack)));
    const workflowId = await startBackfill(stack.client, project.config, { name: 'sleepy_rows', environment: 'bfrestart-env', requestedBy: 'dave', taskQueue: target.taskQueue });
    const handle = stack.client.workflow.getHandle(workflowId);
    await eventually(async () => ((await readBackfillStatus(stack.client, 'bfrestart-env', 'sleepy_rows')).progress?.batchesDone ?? 0) >= 3, 'three batches to finish');

    await cluster.stop();
    const failing = await eventually(async () => {
      const pending = (await handle.describe()).raw.pendingActivities ?? [];
      return pending.find((activity) => activity.lastFailure) ?? false;
    }, 'a batch attempt to fail against the stopped server', 20_000, 200);
    console.info(`backfill postgres restart: ${failing.activityType?.name} failed with "${failing.lastFailure?.message}" and waits for its retry`);
    await sleep(2_000);
    expect((await handle.describe()).status.name).toBe('RUNNING');
    expect((await readBackfillStatus(stack.client, 'bfrestart-env', 'sleepy_rows')).state).toBe('running');
    await cluster.start();

    const final = await handle.result() as BackfillStatus;
    expect(final.state).toBe('finished');
    expect(await runsPerRow(url)).toEqual([{ runs: 1, rows: 1_500 }]);
  });
});
