import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackfill } from '../../cli/backfill-client';
import { pipelineStatus, sendDecision, startPipeline } from '../../cli/pipeline-client';
import { backfillFinished } from '../../workflows/messages';
import type { BackfillStatus } from '../../core/backfill-status';
import type { PipelineStatus } from '../../core/pipeline';
import { query } from '../helpers/postgres';
import { createProject, migration, type TestProject } from '../helpers/project';
import { createStack, eventually, replayWorkflows, type Stack } from '../helpers/stack';

// Seed 000 in small: machines point at runners; the new runners_copy table is filled by a backfill, and the foreign
// key to it may only be added once the backfill finished.
const SCHEMA = [
  'CREATE TABLE runners (id bigint PRIMARY KEY)',
  'CREATE TABLE runners_copy (id bigint PRIMARY KEY)',
  'CREATE TABLE machines (id bigserial PRIMARY KEY, runner_id bigint NOT NULL)',
  'INSERT INTO runners SELECT generate_series(1, 400)',
  'INSERT INTO machines (runner_id) SELECT generate_series(1, 400)',
];
const BACKFILL = [
  'table: runners',
  'key: id',
  'batch: INSERT INTO runners_copy (id) SELECT id FROM runners WHERE id >= :start AND id < :end ON CONFLICT DO NOTHING',
  'maxBatchSize: 50',
].join('\n');
const ADD_FK = 'ALTER TABLE machines ADD CONSTRAINT fk_machines_runner FOREIGN KEY (runner_id) REFERENCES runners_copy (id) NOT VALID;';

describe('a migration that requires a backfill', () => {
  let stack: Stack;
  let waiting: TestProject;
  let unguarded: TestProject;
  let decomposed: TestProject;
  let longWait: TestProject;

  beforeAll(async () => {
    stack = await createStack();
    waiting = await createProject('requiresbf', {
      environments: [{ name: 'rbstaging' }],
      migrations: { '20241106120000_add_fk_machines_runner.sql': `-- dbchange:requires-backfill backfill_runners\n${migration(ADD_FK)}` },
      backfills: { '20241104120000_backfill_runners.yaml': BACKFILL },
    });
    unguarded = await createProject('orphansbf', {
      environments: [{ name: 'obstaging' }],
      migrations: { '20241106120000_add_fk_machines_runner.sql': migration(ADD_FK) },
      backfills: { '20241104120000_backfill_runners.yaml': BACKFILL },
    });
    // The runner tables live in ci only: the migration says so, and so does the backfill.
    decomposed = await createProject('decomposedbf', {
      environments: [{ name: 'dbstaging', databases: ['main', 'ci'] }],
      migrations: { '20241106120000_add_fk_machines_runner.sql': `-- dbchange:requires-backfill backfill_runners\n-- dbchange:databases ci\n${migration(ADD_FK)}` },
      backfills: { '20241104120000_backfill_runners.yaml': `${BACKFILL}\ndatabase: ci` },
    });
    longWait = await createProject('longwaitbf', {
      environments: [{ name: 'lwstaging' }],
      migrations: { '20241106120000_add_fk_machines_runner.sql': `-- dbchange:requires-backfill backfill_runners\n${migration(ADD_FK)}` },
      backfills: { '20241104120000_backfill_runners.yaml': BACKFILL },
    });
    for (const url of [waiting.urls.rbstaging, unguarded.urls.obstaging, decomposed.urls['dbstaging/ci'], longWait.urls.lwstaging]) for (const sql of SCHEMA) await query(url, sql);
  });
  afterAll(async () => {
    await stack?.close();
    await waiting?.cleanup();
    await unguarded?.cleanup();
    await decomposed?.cleanup();
    await longWait?.cleanup();
  });

  it('waits until the backfill finished on that environment, wakes when it does, then applies cleanly', { timeout: 120_000 }, async () => {
    const taskQueue = stack.newTaskQueue();
    await stack.startWorker(waiting.config, taskQueue);
    const pipeline = await startPipeline(stack.client, waiting.config, { requestedBy: 'dave', taskQueue });
    const waitingStatus = await eventually(async () => {
      const found = await pipelineStatus(stack.client, pipeline.workflowId);
      return found.stage === 'waiting-backfill' && found;
    }, 'the pipeline to wait for the backfill');
    expect(waitingStatus.waitingFor).toContain('20241106120000_add_fk_machines_runner.sql waits for backfill backfill_runners on rbstaging, not started (start it with `dbchange backfill start backfill_runners --env rbstaging`)');
    expect(await query(waiting.urls.rbstaging, "SELECT count(*) AS added FROM pg_constraint WHERE conname = 'fk_machines_runner'")).toEqual([{ added: '0' }]);

    // Long enough for the fallback timer to slow to 8 s: the pipeline must go on at the backfill's signal, not the timer.
    await new Promise((resolve) => setTimeout(resolve, 8_000));
    const backfillId = await startBackfill(stack.client, waiting.config, { name: 'backfill_runners', environment: 'rbstaging', requestedBy: 'dave', taskQueue });
    const backfill = await stack.client.workflow.getHandle(backfillId).result() as BackfillStatus;
    const backfillDone = Date.now();
    expect(backfill.state).toBe('finished');

    const final = await pipeline.result() as PipelineStatus;
    const wokeAfterMs = Date.now() - backfillDone;
    expect(final.stage).toBe('complete');
    expect(wokeAfterMs).toBeLessThan(5_000);
    expect(await query(waiting.urls.rbstaging, "SELECT convalidated FROM pg_constraint WHERE conname = 'fk_machines_runner'")).toEqual([{ convalidated: false }]);
    // Writes keep working: every runner a machine may name is in the copy.
    await query(waiting.urls.rbstaging, 'INSERT INTO machines (runner_id) VALUES (400)');
    expect(await replayWorkflows(stack, [pipeline.workflowId])).toBeGreaterThanOrEqual(1);
  });

  it('without the header, the orphan precheck blocks and names the backfill that would fix it', { timeout: 60_000 }, async () => {
    const taskQueue = stack.newTaskQueue();
    await stack.startWorker(unguarded.config, taskQueue);
    const pipeline = await startPipeline(stack.client, unguarded.config, { requestedBy: 'dave', taskQueue });
    const blocked = await eventually(async () => {
      const found = await pipelineStatus(stack.client, pipeline.workflowId);
      return found.stage === 'blocked' && found;
    }, 'the orphan precheck to block');
    expect(blocked.waitingFor).toContain('400 rows of machines point at 400 missing runners_copy rows');
    expect(blocked.waitingFor).toContain('backfill backfill_runners does (`dbchange backfill start backfill_runners --env ENVIRONMENT`), and `-- dbchange:requires-backfill backfill_runners` makes this migration wait for it');
    await sendDecision(stack.client, pipeline.workflowId, 'resolve', { user: 'alice', action: 'abort' });
  });

  it('on a database the migration skips, records it skipped without waiting; on its own database it waits', { timeout: 120_000 }, async () => {
    const taskQueue = stack.newTaskQueue();
    await stack.startWorker(decomposed.config, taskQueue);
    const pipeline = await startPipeline(stack.client, decomposed.config, { requestedBy: 'dave', taskQueue });
    const waitingStatus = await eventually(async () => {
      const found = await pipelineStatus(stack.client, pipeline.workflowId);
      return found.stage === 'waiting-backfill' && found;
    }, 'the pipeline to wait for the backfill on ci');
    expect(waitingStatus.waitingFor).toContain('20241106120000_add_fk_machines_runner.sql waits for backfill backfill_runners on dbstaging/ci');
    // main went first and did not wait: it holds the version, recorded as skipped.
    expect(await query(decomposed.urls['dbstaging/main'], 'SELECT version FROM schema_migrations')).toEqual([{ version: '20241106120000' }]);

    await startBackfill(stack.client, decomposed.config, { name: 'backfill_runners', environment: 'dbstaging', requestedBy: 'dave', taskQueue });
    const final = (await pipeline.result()) as PipelineStatus;
    expect(final.stage).toBe('complete');
    expect(final.results[0].databases?.map((database) => [database.database, database.migrations.map((outcome) => outcome.outcome)])).toEqual([
      ['main', ['skipped']],
      ['ci', ['applied']],
    ]);
  });

  it('hands a long wait over to a new run before its history fills up, and goes on there when the backfill finishes', { timeout: 180_000 }, async () => {
    const taskQueue = stack.newTaskQueue();
    await stack.startWorker(longWait.config, taskQueue);
    const pipeline = await startPipeline(stack.client, longWait.config, { requestedBy: 'dave', taskQueue });
    await eventually(async () => (await pipelineStatus(stack.client, pipeline.workflowId)).stage === 'waiting-backfill', 'the pipeline to wait for the backfill');
    const firstRunId = (await pipeline.describe()).runId;
    // Each wake-up looks again (an activity, a timer and their workflow tasks): a signal about another backfill is one.
    let signals = 0;
    while ((await stack.client.workflow.getHandle(pipeline.workflowId).describe()).runId === firstRunId) {
      expect(signals, 'signals sent before the run handed over').toBeLessThan(600);
      await stack.client.workflow.getHandle(pipeline.workflowId).signal(backfillFinished, { target: 'lwstaging', name: 'another_backfill' });
      signals++;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const firstRun = await stack.client.workflow.getHandle(pipeline.workflowId, firstRunId).describe();
    expect(firstRun.status.name).toBe('CONTINUED_AS_NEW');
    expect(firstRun.historyLength).toBeLessThan(1_200);
    await eventually(async () => (await pipelineStatus(stack.client, pipeline.workflowId)).stage === 'waiting-backfill', 'the new run to wait again');

    await startBackfill(stack.client, longWait.config, { name: 'backfill_runners', environment: 'lwstaging', requestedBy: 'dave', taskQueue });
    const final = (await stack.client.workflow.getHandle(pipeline.workflowId).result()) as PipelineStatus;
    expect(final.stage).toBe('complete');
    expect(await query(longWait.urls.lwstaging, "SELECT count(*)::int AS added FROM pg_constraint WHERE conname = 'fk_machines_runner'")).toEqual([{ added: 1 }]);
    console.info(`requires-backfill: the wait handed over after ${signals} wake-ups, at ${firstRun.historyLength} events`);
  });
});
