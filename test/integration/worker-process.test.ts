import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPipeline } from '../../cli/pipeline-client';
import { DEFAULT_MAX_CACHED_WORKFLOWS, DEFAULT_MAX_CONCURRENT_WORKFLOW_TASKS, HEAP_FLAGS } from '../../worker/memory-defaults';
import { assertBuilt, runCli, startWorkerProcess, stopWorkerProcesses, type CliTarget, type WorkerProcess } from '../helpers/processes';
import { ADMIN_URL, query } from '../helpers/postgres';
import { createProject, migration, type TestProject } from '../helpers/project';
import { createStack, eventually, replayWorkflows, type Stack } from '../helpers/stack';

const ENVIRONMENT = 'drain-env';
const cacheOf = (output: string) => Number(/workflow cache (\d+)/.exec(output)?.[1]);
const SLOW_MIGRATION = migration("SELECT pg_sleep(2);\nCREATE TABLE drain_widgets (id bigint PRIMARY KEY);\nINSERT INTO drain_side_effects (note) VALUES ('ran');");

describe('the worker process', () => {
  let stack: Stack;
  let project: TestProject;
  let target: CliTarget;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    assertBuilt();
    stack = await createStack();
    project = await createProject('drain', {
      environments: [{ name: ENVIRONMENT }],
      migrations: { '20240701000001_slow_widgets.sql': SLOW_MIGRATION },
    });
    await query(project.urls[ENVIRONMENT], 'CREATE TABLE drain_side_effects (id serial PRIMARY KEY, note text NOT NULL)');
    target = { address: stack.address, taskQueue: stack.newTaskQueue(), configPath: project.configPath };
  });
  afterAll(async () => {
    await stopWorkerProcesses(workers);
    await stack?.close();
    await project?.cleanup();
  });

  it('on SIGTERM lets the in-flight migration finish and record itself, then exits 0', { timeout: 60_000 }, async () => {
    const first = await startWorkerProcess(target);
    workers.push(first);
    const handle = await startPipeline(stack.client, project.config, { requestedBy: 'dave', taskQueue: target.taskQueue });
    const database = new URL(project.urls[ENVIRONMENT]).pathname.slice(1);
    await eventually(
      async () =>
        (await query(ADMIN_URL, `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND query LIKE '%pg_sleep(2)%' AND pid <> pg_backend_pid()`, [database])).length === 1,
      'the slow migration to run',
    );
    expect(await first.kill('SIGTERM')).toBe(0);
    // The migration committed before the worker left: applied once, on its first attempt.
    expect(await query(project.urls[ENVIRONMENT], 'SELECT version, outcome, attempts FROM dbchange_migration_log')).toEqual([
      { version: '20240701000001', outcome: 'applied', attempts: 1 },
    ]);

    workers.push(await startWorkerProcess(target));
    const result = await handle.result();
    expect(result.results[0].migrations.map((m) => [m.outcome, m.attempts])).toEqual([['applied', 1]]);
    expect(await query(project.urls[ENVIRONMENT], 'SELECT note FROM drain_side_effects')).toEqual([{ note: 'ran' }]);
  });

  it('serves Prometheus metrics at --metrics-address', async () => {
    const port = 19_000 + Math.floor(Math.random() * 1_000);
    const worker = await startWorkerProcess(target, { args: ['--metrics-address', `127.0.0.1:${port}`] });
    workers.push(worker);
    expect(worker.output()).toContain(`metrics on http://127.0.0.1:${port}/metrics`);
    const workflowSlots = /^temporal_worker_task_slots_available\{[^}]*worker_type="WorkflowWorker"[^}]*\} (\d+)$/m;
    const body = await eventually(async () => {
      const response = await fetch(`http://127.0.0.1:${port}/metrics`);
      const text = await response.text();
      return response.ok && workflowSlots.test(text) && text;
    }, 'the metrics endpoint');
    expect(body).toMatch(/^temporal_\w+/m);
    // With no flag for it, the SDK's core runs DEFAULT_MAX_CONCURRENT_WORKFLOW_TASKS workflow tasks at once, not its 40.
    expect(Number(workflowSlots.exec(body)?.[1])).toBe(DEFAULT_MAX_CONCURRENT_WORKFLOW_TASKS);
    expect(await worker.kill('SIGTERM')).toBe(0);
  });

  it("--max-cached-workflows sets the SDK's workflow cache (the worker prints the size it compiled); below 2 is refused with exit 3", async () => {
    const refused = await runCli(target, ['worker', '--max-cached-workflows', '1']);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('--max-cached-workflows must be a whole number of at least 2, not 1');
    const bounded = await startWorkerProcess(target, { args: ['--max-cached-workflows', '2'] });
    workers.push(bounded);
    expect(cacheOf(bounded.output())).toBe(2);
    expect(await bounded.kill('SIGTERM')).toBe(0);
  });

  it('with no flags gives the SDK a cache of 100 workflows and V8 its heap flags before the workflow thread starts; a flag in NODE_OPTIONS wins', async () => {
    const standard = await startWorkerProcess(target);
    workers.push(standard);
    expect(cacheOf(standard.output())).toBe(DEFAULT_MAX_CACHED_WORKFLOWS);
    expect(standard.output()).toContain(`V8 ${HEAP_FLAGS.join(' ')}`);
    expect(await standard.kill('SIGTERM')).toBe(0);
    const ownHeap = await startWorkerProcess(target, { env: { NODE_OPTIONS: '--max-semi-space-size=8' } });
    workers.push(ownHeap);
    expect(ownHeap.output()).toMatch(/V8 --heap-growing-percent=20$/m);
    expect(await ownHeap.kill('SIGTERM')).toBe(0);
  });

  it('replays the history it produced without nondeterminism', async () => {
    expect(await replayWorkflows(stack, [`pdm-${ENVIRONMENT}`])).toBe(1);
  });
});
