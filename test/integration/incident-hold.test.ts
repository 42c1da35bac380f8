import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIncident, pipelineStatus, startPipeline } from '../../cli/pipeline-client';
import type { PipelineStatus } from '../../core/pipeline';
import { assertBuilt, runCli, type CliTarget } from '../helpers/processes';
import { query } from '../helpers/postgres';
import { createProject, migration, type TestProject } from '../helpers/project';
import { ISOLATED_NAMESPACE } from '../helpers/namespaces';
import { createStack, eventually, replayWorkflows, type Stack } from '../helpers/stack';

// Incidents are namespace-wide on purpose (an incident holds every change), so this file runs in a
// namespace of its own and cannot hold other files' pipelines.
const ENVIRONMENTS = ['hold-staging', 'hold-production'];
const WORKFLOW_ID = 'pdm-hold-staging+hold-production';
const SEV2 = { id: 'hold-sev2', workflowId: 'incident-hold-sev2' };
const SEV3 = { id: 'hold-sev3', workflowId: 'incident-hold-sev3' };

describe('production checks and incidents', () => {
  let stack: Stack;
  let project: TestProject;
  let target: CliTarget;

  beforeAll(async () => {
    assertBuilt();
    stack = await createStack(ISOLATED_NAMESPACE);
    project = await createProject('hold', {
      environments: ENVIRONMENTS.map((name) => ({ name })),
      migrations: { '20240501000001_create_jobs.sql': migration('CREATE TABLE hold_jobs (id bigint PRIMARY KEY);') },
      recheckInterval: '1s',
    });
    target = { address: stack.address, namespace: stack.namespace, taskQueue: stack.newTaskQueue(), configPath: project.configPath };
    // The incident workflows run on this worker's task queue, like every dbchange workflow.
    await stack.startWorker(project.config, target.taskQueue);
  });
  afterAll(async () => {
    for (const incident of [SEV2, SEV3]) await stack?.client.workflow.getHandle(incident.workflowId).terminate('test cleanup').catch(() => undefined);
    await stack?.close();
    await project?.cleanup();
  });

  /** Production checks read incidents from visibility: wait until the server lists this one as running. */
  async function waitUntilListed(workflowId: string, severity: number): Promise<void> {
    await eventually(async () => {
      for await (const execution of stack.client.workflow.list({ query: `WorkflowId = '${workflowId}' AND ExecutionStatus = 'Running' AND DbChangeSeverity = ${severity}` })) {
        return execution.workflowId === workflowId;
      }
      return false;
    }, `${workflowId} to be listed with severity ${severity}`);
  }

  async function appliedVersions(environment: string): Promise<string[] | null> {
    const [{ t }] = await query<{ t: string | null }>(project.urls[environment], `SELECT to_regclass('schema_migrations')::text AS t`);
    if (!t) return null;
    return (await query<{ version: string }>(project.urls[environment], 'SELECT version FROM schema_migrations ORDER BY version')).map((row) => row.version);
  }

  it('an open severity-2 incident holds the pipeline before production; closing it lets it continue', async () => {
    expect(await openIncident(stack.client, { id: SEV2.id, severity: 2, title: 'runner API returns 500', openedBy: 'eoc-frank' }, target.taskQueue)).toBe(SEV2.workflowId);
    await waitUntilListed(SEV2.workflowId, 2);

    const handle = await startPipeline(stack.client, project.config, { requestedBy: 'dave', taskQueue: target.taskQueue });
    expect(handle.workflowId).toBe(WORKFLOW_ID);
    // Checks run before each environment, the first one included: nothing runs anywhere while the incident is open.
    const held = await eventually(async () => {
      const snapshot = await pipelineStatus(stack.client, WORKFLOW_ID);
      return snapshot.stage === 'waiting-checks' && snapshot;
    }, 'the pipeline to be held by production checks');
    expect(held.environment).toBe('hold-staging');
    expect(held.waitingFor).toContain(`active severity 2 incident ${SEV2.workflowId}`);
    expect(held.waitingFor).toContain('re-checked the moment that ends, and at least every 1.0s');

    // Several re-check intervals later it is still held, nothing has been applied, and the hold added no events.
    const historyLength = async () => (await stack.client.workflow.getHandle(WORKFLOW_ID).describe()).historyLength;
    const heldAt = await historyLength();
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    expect(await pipelineStatus(stack.client, WORKFLOW_ID)).toMatchObject({ stage: 'waiting-checks', environment: 'hold-staging' });
    expect(await historyLength()).toBe(heldAt);
    expect(await appliedVersions('hold-staging')).toBeNull();
    expect(await appliedVersions('hold-production')).toBeNull();

    const closed = await runCli(target, ['incident', 'close', SEV2.id, '--as', 'eoc-frank', '--comment', 'mitigated']);
    const closedAt = Date.now();
    expect(closed).toMatchObject({ code: 0, stdout: `closed ${SEV2.workflowId}\n` });
    // The hold wakes on the close, not at its next (by now 8 s away) fallback re-check.
    await eventually(async () => (await pipelineStatus(stack.client, WORKFLOW_ID)).stage !== 'waiting-checks', 'the pipeline to move on', 10_000, 50);
    const wokeAfterMs = Date.now() - closedAt;
    console.info(`incident hold: ${heldAt} events when held, none added in 6 s; moved on ${wokeAfterMs} ms after the close`);
    expect(wokeAfterMs).toBeLessThan(5_000);
    expect(await stack.client.workflow.getHandle(SEV2.workflowId).result()).toEqual({ closedBy: 'eoc-frank', comment: 'mitigated' });

    const result: PipelineStatus = await handle.result();
    expect(result.stage).toBe('complete');
    expect(result.results.map((entry) => [entry.environment, entry.done, entry.migrations.map((m) => m.outcome)])).toEqual([
      ['hold-staging', true, ['applied']],
      ['hold-production', true, ['applied']],
    ]);
    for (const environment of ENVIRONMENTS) expect(await appliedVersions(environment)).toEqual(['20240501000001']);
  });

  it('a severity-3 incident does not hold a pipeline', async () => {
    project.writeMigration('20240501000002_create_job_logs.sql', migration('CREATE TABLE hold_job_logs (id bigint PRIMARY KEY);'));
    await openIncident(stack.client, { id: SEV3.id, severity: 3, title: 'slow dashboards', openedBy: 'eoc-frank' }, target.taskQueue);
    await waitUntilListed(SEV3.workflowId, 3);

    const handle = await startPipeline(stack.client, project.config, { requestedBy: 'dave', taskQueue: target.taskQueue });
    const seen: PipelineStatus[] = [];
    const result = await eventually(async () => {
      const snapshot = await pipelineStatus(stack.client, WORKFLOW_ID);
      seen.push(snapshot);
      return snapshot.stage === 'complete' && snapshot;
    }, 'the second pipeline to complete');

    expect(seen.filter((snapshot) => snapshot.stage === 'waiting-checks')).toEqual([]);
    expect(result.results.map((entry) => entry.migrations.map((m) => [m.version, m.outcome]))).toEqual([
      [['20240501000002', 'applied']],
      [['20240501000002', 'applied']],
    ]);
    expect((await handle.result()).stage).toBe('complete');
    expect((await stack.client.workflow.getHandle(SEV3.workflowId).describe()).status.name).toBe('RUNNING');
    for (const environment of ENVIRONMENTS) expect(await appliedVersions(environment)).toEqual(['20240501000001', '20240501000002']);

    const closed = await runCli(target, ['incident', 'close', SEV3.workflowId, '--as', 'eoc-frank']);
    expect(closed).toMatchObject({ code: 0, stdout: `closed ${SEV3.workflowId}\n` });
  });

  it('a change-lock window holds the pipeline until it ends', async () => {
    const now = Date.now();
    const lockProject = await createProject('lock', {
      environments: [{ name: 'lock-env' }],
      migrations: { '20240501000003_create_lock_jobs.sql': migration('CREATE TABLE lock_jobs (id bigint PRIMARY KEY);') },
      changeLocks: [{ start: new Date(now - 60_000).toISOString(), end: new Date(now + 4_000).toISOString(), reason: 'holiday change lock' }],
    });
    try {
      await stack.startWorker(lockProject.config, target.taskQueue + '-lock');
      const handle = await startPipeline(stack.client, lockProject.config, { requestedBy: 'dave', taskQueue: target.taskQueue + '-lock' });
      const held = await eventually(async () => {
        const snapshot = await pipelineStatus(stack.client, handle.workflowId);
        return snapshot.stage === 'waiting-checks' && snapshot;
      }, 'the change lock to hold the pipeline');
      expect(held.waitingFor).toContain('holiday change lock');
      const result = await handle.result();
      expect(result.stage).toBe('complete');
      expect(Date.now()).toBeGreaterThanOrEqual(now + 4_000);
      expect(await query(lockProject.urls['lock-env'], 'SELECT version FROM schema_migrations')).toEqual([{ version: '20240501000003' }]);
    } finally {
      await lockProject.cleanup();
    }
  });

  it('replays the pipeline and incident histories it produced without nondeterminism', async () => {
    // Two pipeline runs under one id, and the two incidents.
    expect(await replayWorkflows(stack, [WORKFLOW_ID, SEV2.workflowId, SEV3.workflowId])).toBe(4);
  });
});
