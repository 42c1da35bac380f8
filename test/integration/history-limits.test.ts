// A pipeline stays within Temporal's history limits whatever its size: on a server whose event limit is far below
// what the whole pipeline needs in one history, it continues as new and completes, and its status and decisions
// tell the whole story across runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipelineStatus, sendDecision, startPipeline } from '../../cli/pipeline-client';
import { startOwnDevServer, type OwnDevServer } from '../helpers/dev-servers';
import { createFleetProject, schemaOf, type FleetProject } from '../helpers/fleet';
import { query } from '../helpers/postgres';
import { createProject, migration, type TestProject } from '../helpers/project';
import { createStack, eventually, replayWorkflows, type Stack } from '../helpers/stack';

const MIGRATIONS = 24;
// Without continue-as-new this pipeline needs about 150 events; the server terminates a run at 100.
const LIMITS = { 'limit.historyCount.error': 100, 'limit.historyCount.warn': 60, 'limit.historyCount.suggestContinueAsNew': 40 };
const WORKFLOW_ID = 'pdm-limits-staging+limits-production';

describe('bounded histories', () => {
  let server: OwnDevServer;
  let stack: Stack;
  let project: TestProject;
  let fleet: FleetProject | undefined;
  let fleetWorkflowId = '';

  beforeAll(async () => {
    server = await startOwnDevServer({ dynamicConfig: LIMITS });
    stack = await createStack('default', server.address);
    // Each migration takes long enough that a batch (1.5 s) holds only a few: many batches, many events.
    const files = Object.fromEntries(
      Array.from({ length: MIGRATIONS }, (_, index) => [`202410010000${String(index).padStart(2, '0')}_step_${index}.sql`, migration(`CREATE TABLE IF NOT EXISTS limits_${index} (id int);\nSELECT pg_sleep(0.4);`)]),
    );
    project = await createProject('limits', {
      environments: [{ name: 'limits-staging' }, { name: 'limits-production', approvalRoles: ['release-manager'] }],
      migrations: files,
    });
  });
  afterAll(async () => {
    await stack?.close();
    await server?.stop();
    await project?.cleanup();
    await fleet?.cleanup();
  });

  it('continues as new instead of being terminated, and its status and decisions span every run', async () => {
    const taskQueue = stack.newTaskQueue();
    await stack.startWorker(project.config, taskQueue);
    const handle = await startPipeline(stack.client, project.config, { requestedBy: 'dave', taskQueue });

    const waiting = await eventually(async () => {
      const snapshot = await pipelineStatus(stack.client, WORKFLOW_ID);
      return snapshot.stage === 'waiting-approval' && snapshot;
    }, 'staging to finish and production to wait for approval', 60_000);
    expect(waiting.run).toBeGreaterThan(1);
    expect(waiting.results[0].counts.applied).toBe(MIGRATIONS);
    // The refusal and the approval land in different runs' histories, yet the record keeps both.
    await sendDecision(stack.client, WORKFLOW_ID, 'approve', { user: 'dave', role: 'release-manager' });
    await sendDecision(stack.client, WORKFLOW_ID, 'approve', { user: 'carol', role: 'release-manager', comment: 'staging is fine' });

    const final = await eventually(async () => {
      const snapshot = await pipelineStatus(stack.client, WORKFLOW_ID);
      return snapshot.stage === 'complete' && snapshot;
    }, 'the pipeline to complete', 60_000);
    expect(final.results.map((environment) => [environment.environment, environment.counts.applied, environment.done])).toEqual([
      ['limits-staging', MIGRATIONS, true],
      ['limits-production', MIGRATIONS, true],
    ]);
    expect(final.decisions.map((decision) => [decision.user, decision.accepted])).toEqual([
      ['dave', false],
      ['carol', true],
    ]);
    for (const url of Object.values(project.urls)) expect(await query(url, 'SELECT count(*)::int AS n FROM schema_migrations')).toEqual([{ n: MIGRATIONS }]);

    const runs: { status: string; events: number }[] = [];
    for await (const execution of stack.client.workflow.list({ query: `WorkflowId = '${WORKFLOW_ID}'` })) {
      const history = await stack.client.workflow.getHandle(WORKFLOW_ID, execution.runId).fetchHistory();
      runs.push({ status: execution.status.name, events: history.events?.length ?? 0 });
    }
    console.info(`history limits: ${runs.length} runs, events per run ${runs.map((run) => run.events).join(', ')} (limit ${LIMITS['limit.historyCount.error']})`);
    expect(runs.length).toBe(final.run);
    expect(runs.filter((run) => run.status === 'CONTINUED_AS_NEW')).toHaveLength(runs.length - 1);
    expect(runs.filter((run) => run.status === 'COMPLETED')).toHaveLength(1);
    expect(Math.max(...runs.map((run) => run.events))).toBeLessThan(LIMITS['limit.historyCount.error']);
    expect(handle.workflowId).toBe(WORKFLOW_ID);
  });

  it('rolls a fleet out across runs: the waves go on where the last run left them, each target once', async () => {
    // 30 targets need about 200 events in one history; the server terminates a run at 100.
    const targets = Array.from({ length: 30 }, (_, index) => `lim-${String(index + 1).padStart(2, '0')}`);
    fleet = await createFleetProject('limfleet', {
      environment: 'limcells',
      targets,
      waves: '[{count: 1}, {percent: 30}, {percent: 100}]',
      concurrency: 4,
      migrations: { '20241101000001_a.sql': migration('CREATE TABLE a (id int);'), '20241101000002_b.sql': migration('CREATE TABLE b (id int);') },
    });
    const taskQueue = stack.newTaskQueue();
    await stack.startWorker(fleet.config, taskQueue);
    const handle = await startPipeline(stack.client, fleet.config, { requestedBy: 'dave', taskQueue });
    const final = await handle.result();
    expect(final.stage).toBe('complete');
    expect(final.run).toBeGreaterThan(1);
    expect(final.results[0].fleet!.waves.map((wave) => [wave.size, wave.done])).toEqual([[1, 1], [8, 8], [21, 21]]);
    expect(final.results[0].counts.applied).toBe(60);
    for (const target of targets) {
      expect(await query(fleet.url, `SELECT version, count(*)::int AS n FROM ${schemaOf(target)}.dbchange_migration_log WHERE outcome = 'applied' GROUP BY version ORDER BY version`)).toEqual([
        { version: '20241101000001', n: 1 },
        { version: '20241101000002', n: 1 },
      ]);
    }
    const events: number[] = [];
    for await (const execution of stack.client.workflow.list({ query: `WorkflowId = '${handle.workflowId}'` })) {
      events.push((await stack.client.workflow.getHandle(handle.workflowId, execution.runId).fetchHistory()).events?.length ?? 0);
    }
    console.info(`history limits (fleet of ${targets.length}): ${events.length} runs, events per run ${events.join(', ')}`);
    expect(events).toHaveLength(final.run);
    expect(Math.max(...events)).toBeLessThan(LIMITS['limit.historyCount.error']);
    fleetWorkflowId = handle.workflowId;
  });

  it('replays every run of the pipelines without nondeterminism', async () => {
    expect(await replayWorkflows(stack, [WORKFLOW_ID, fleetWorkflowId])).toBeGreaterThan(2);
  });
});
