import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPipeline } from '../../cli/pipeline-client';
import type { PipelineStatus } from '../../core/pipeline';
import { assertBuilt, startWorkerProcess, stopWorkerProcesses, type CliTarget, type WorkerProcess } from '../helpers/processes';
import { ADMIN_URL, query } from '../helpers/postgres';
import { createProject, migration, type TestProject } from '../helpers/project';
import { createStack, eventually, replayWorkflows, type Stack } from '../helpers/stack';

const ENVIRONMENT = 'crash-production';
const WORKFLOW_ID = `pdm-${ENVIRONMENT}`;
const VERSION = '20240301000001';
const SLOW_MIGRATION = migration(
  [
    'SELECT pg_sleep(3);',
    'CREATE TABLE crash_widgets (id bigint PRIMARY KEY);',
    "INSERT INTO crash_side_effects (note) VALUES ('slow migration ran');",
  ].join('\n'),
);

describe('worker crash during a migration', () => {
  let stack: Stack;
  let project: TestProject;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    assertBuilt();
    stack = await createStack();
    project = await createProject('crash', {
      environments: [{ name: ENVIRONMENT }],
      migrations: { [`${VERSION}_slow_widgets.sql`]: SLOW_MIGRATION },
    });
    // The side effect lives outside the migration's own objects, so a second run would show as a second row.
    await query(project.urls[ENVIRONMENT], 'CREATE TABLE crash_side_effects (id serial PRIMARY KEY, note text NOT NULL)');
  });
  afterAll(async () => {
    await stopWorkerProcesses(workers);
    await stack?.close();
    await project?.cleanup();
  });

  it('a worker killed during a slow migration is replaced and the migration is applied once', { timeout: 120_000 }, async () => {
    const target: CliTarget = { address: stack.address, taskQueue: stack.newTaskQueue(), configPath: project.configPath };
    const first = await startWorkerProcess(target);
    workers.push(first);
    const handle = await startPipeline(stack.client, project.config, { requestedBy: 'dave', taskQueue: target.taskQueue });
    expect(handle.workflowId).toBe(WORKFLOW_ID);

    const database = new URL(project.urls[ENVIRONMENT]).pathname.slice(1);
    const sleeping = await eventually(async () => {
      const rows = await query<{ pid: number }>(
        ADMIN_URL,
        `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND query LIKE '%pg_sleep(3)%' AND pid <> pg_backend_pid()`,
        [database],
      );
      return rows.length === 1 && rows[0];
    }, 'the slow migration to be running in PostgreSQL');

    const killedAt = Date.now();
    expect(await first.kill('SIGKILL')).toBe('SIGKILL');
    // The dead worker's backend notices (client_connection_check_interval) and rolls back, releasing the applier lock.
    await eventually(async () => {
      const rows = await query(ADMIN_URL, 'SELECT 1 FROM pg_stat_activity WHERE pid = $1', [sleeping.pid]);
      return rows.length === 0;
    }, 'the killed worker\'s session to end', 10_000);
    expect(await query(project.urls[ENVIRONMENT], `SELECT to_regclass('crash_widgets') AS t`)).toEqual([{ t: null }]);

    const second = await startWorkerProcess(target);
    workers.push(second);
    const result: PipelineStatus = await handle.result();
    const recoveredInMs = Date.now() - killedAt;

    expect(result.stage).toBe('complete');
    const outcome = result.results[0].migrations[0];
    expect(outcome).toMatchObject({ version: VERSION, outcome: 'applied' });
    // Attempt 1 died with the first worker (heartbeat timeout 10s); attempt 2 ran on the second worker.
    expect(outcome.attempts).toBe(2);
    expect(recoveredInMs).toBeGreaterThanOrEqual(10_000);

    const url = project.urls[ENVIRONMENT];
    expect(await query(url, 'SELECT version FROM schema_migrations')).toEqual([{ version: VERSION }]);
    expect(await query(url, 'SELECT version, outcome, attempts, workflow_id FROM dbchange_migration_log ORDER BY id')).toEqual([
      { version: VERSION, outcome: 'applied', attempts: 2, workflow_id: WORKFLOW_ID },
    ]);
    expect(await query(url, 'SELECT note FROM crash_side_effects')).toEqual([{ note: 'slow migration ran' }]);
    expect(await query(url, `SELECT to_regclass('crash_widgets')::text AS t`)).toEqual([{ t: 'crash_widgets' }]);
  });

  it('replays the pipeline history it produced without nondeterminism', async () => {
    expect(await replayWorkflows(stack, [WORKFLOW_ID])).toBe(1);
  });
});
