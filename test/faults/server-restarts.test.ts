import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../examples/demo/embedded-db';
import { pipelineStatus, sendDecision, startPipeline } from '../../cli/pipeline-client';
import { startDevServer, type DevServer } from '../../worker/dev-server';
import { WORKFLOWS_PATH } from '../../worker/worker';
import { assertBuilt, stopWorkerProcesses, type CliTarget, type WorkerProcess } from '../helpers/processes';
import { query } from '../helpers/postgres';
import { createProject, migration, type TestProject } from '../helpers/project';
import { createStack, eventually, historyText, replayWorkflows, type Stack } from '../helpers/stack';
import { freePort, sleep, startPrebundledWorker, writeBundle } from './fault-helpers';

const SLOW_STEP_S = 1;
const versions = (prefix: string, count: number) => Array.from({ length: count }, (_, index) => `${prefix}${String(index + 1).padStart(2, '0')}`);
const slowMigrations = (list: string[], table: string) =>
  Object.fromEntries(list.map((version) => [`${version}_step.sql`, migration(`INSERT INTO ${table} (version) VALUES ('${version}');\nSELECT pg_sleep(${SLOW_STEP_S});`)]));

async function expectAppliedOnce(url: string, table: string, expected: string[]): Promise<void> {
  expect((await query<{ version: string }>(url, 'SELECT version FROM schema_migrations ORDER BY version')).map((row) => row.version)).toEqual(expected);
  expect(await query(url, `SELECT version, count(*)::int AS n FROM dbchange_migration_log WHERE outcome = 'applied' GROUP BY version ORDER BY version`)).toEqual(
    expected.map((version) => ({ version, n: 1 })),
  );
  expect(await query(url, `SELECT version, count(*)::int AS n FROM ${table} GROUP BY version ORDER BY version`)).toEqual(expected.map((version) => ({ version, n: 1 })));
}

describe('a PostgreSQL restart mid-pipeline (a throwaway server, never the shared one)', () => {
  const VERSIONS = versions('202405030000', 6);
  let stack: Stack;
  let project: TestProject;
  let cluster: EmbeddedPostgres;
  let dataDir: string;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    assertBuilt();
    stack = await createStack();
    dataDir = mkdtempSync(join(tmpdir(), 'dbchange-pgrestart-'));
    cluster = await startEmbeddedPostgres({ dataDir: join(dataDir, 'data'), port: await freePort() });
    project = await createProject('pgrestart', {
      environments: [{ name: 'pgrestart-env' }],
      migrations: slowMigrations(VERSIONS, 'pgrestart_side_effects'),
      adminUrl: cluster.urlOf('postgres'),
    });
    await query(project.urls['pgrestart-env'], 'CREATE TABLE pgrestart_side_effects (id serial PRIMARY KEY, version text NOT NULL)');
  });
  afterAll(async () => {
    await stopWorkerProcesses(workers, 5_000);
    await stack?.close();
    await project?.cleanup().catch(() => undefined);
    await cluster?.remove().catch(() => undefined);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('waits while PostgreSQL is down, then resumes and applies each migration once', { timeout: 120_000 }, async () => {
    const target: CliTarget = { address: stack.address, taskQueue: stack.newTaskQueue(), configPath: project.configPath };
    const worker = await startPrebundledWorker(target, writeBundle(stack));
    workers.push(worker);
    const handle = await startPipeline(stack.client, project.config, { requestedBy: 'dave', taskQueue: target.taskQueue });
    await eventually(async () => ((await pipelineStatus(stack.client, handle.workflowId)).migration?.index ?? 0) >= 3, 'the third migration to start');

    await cluster.stop();
    const downSince = Date.now();
    // The pipeline feels the outage (an activity attempt fails and waits for its retry) and holds, not fails.
    const failing = await eventually(async () => {
      const pending = (await handle.describe()).raw.pendingActivities ?? [];
      return pending.find((activity) => activity.lastFailure) ?? false;
    }, 'an activity attempt to fail against the stopped server', 15_000, 200);
    await sleep(3_000);
    const whileDown = await pipelineStatus(stack.client, handle.workflowId);
    expect(whileDown.stage).toBe('applying');
    console.info(`postgres restart: ${failing.activityType?.name} failed with "${failing.lastFailure?.message}" and waits for its retry`);
    expect((await handle.describe()).status.name).toBe('RUNNING');
    await cluster.start();
    console.info(`postgres restart: down for ${Date.now() - downSince} ms at migration ${whileDown.migration?.index} of ${whileDown.migration?.total}`);

    const result = await handle.result();
    expect(result.stage).toBe('complete');
    expect(result.results[0].migrations.map((outcome) => outcome.version)).toEqual(VERSIONS);
    await expectAppliedOnce(project.urls['pgrestart-env'], 'pgrestart_side_effects', VERSIONS);
    expect(await Promise.race([worker.exited, sleep(100).then(() => 'running')])).toBe('running');
    expect(await historyText(stack, handle.workflowId)).not.toContain(new URL(cluster.urlOf('postgres')).password);
    expect(await replayWorkflows(stack, [handle.workflowId])).toBe(1);
  });
});

describe('a Temporal dev server restart (--db-filename), mid-pipeline and during an approval wait', () => {
  const PASSWORD = 'tmprestart-db-password-4ad9e1';
  const VERSIONS = versions('202405040000', 4);
  let server: DevServer;
  let project: TestProject;
  let dbDir: string;
  let ports: { port: number; uiPort: number };
  const workers: WorkerProcess[] = [];

  const restartServer = async () => {
    await server.stop();
    server = await startDevServer({ ...ports, dbFilename: join(dbDir, 'temporal.db'), quiet: true });
  };
  const connect = async () => new Client({ connection: await Connection.connect({ address: server.address }) });

  beforeAll(async () => {
    assertBuilt();
    dbDir = mkdtempSync(join(tmpdir(), 'dbchange-temporal-restart-'));
    ports = { port: await freePort(), uiPort: await freePort() };
    server = await startDevServer({ ...ports, dbFilename: join(dbDir, 'temporal.db'), quiet: true });
    project = await createProject('tmprestart', {
      environments: [{ name: 'tmprestart-staging' }, { name: 'tmprestart-production', approvalRoles: ['release-manager'] }],
      migrations: slowMigrations(VERSIONS, 'tmprestart_side_effects'),
      password: PASSWORD,
    });
    for (const url of Object.values(project.urls)) await query(url, 'CREATE TABLE tmprestart_side_effects (id serial PRIMARY KEY, version text NOT NULL)');
  });
  afterAll(async () => {
    await stopWorkerProcesses(workers, 5_000);
    await server?.stop();
    await project?.cleanup();
    if (dbDir) rmSync(dbDir, { recursive: true, force: true });
  });

  it('continues after a restart mid-pipeline and counts an approval sent after a restart during the wait', { timeout: 150_000 }, async () => {
    const bundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') });
    const bundlePath = writeBundle({ bundle });
    const target: CliTarget = { address: server.address, taskQueue: 'tmprestart', configPath: project.configPath };
    const worker = await startPrebundledWorker(target, bundlePath);
    workers.push(worker);
    let client = await connect();
    const handle = await startPipeline(client, project.config, { requestedBy: 'dave', taskQueue: target.taskQueue });
    const workflowId = handle.workflowId;
    await eventually(async () => ((await pipelineStatus(client, workflowId)).migration?.index ?? 0) >= 2, 'the second staging migration to start');

    await restartServer();
    client = await connect();
    const waiting = await eventually(async () => {
      const snapshot = await pipelineStatus(client, workflowId);
      return snapshot.stage === 'waiting-approval' && snapshot;
    }, 'the pipeline to reach the approval gate after the restart', 60_000, 250);
    expect(waiting.results[0].migrations.map((outcome) => outcome.version)).toEqual(VERSIONS);

    await restartServer();
    client = await connect();
    const answer = await eventually(
      () => sendDecision(client, workflowId, 'approve', { user: 'alice', role: 'release-manager', comment: 'after the restart' }),
      'the approval to be answered after the second restart',
      60_000,
      500,
    );
    expect(answer).toEqual({ accepted: true, reason: 'approved tmprestart-production as release-manager' });
    const result = await client.workflow.getHandle(workflowId).result();
    expect(result.stage).toBe('complete');
    expect(result.decisions.filter((decision: { accepted: boolean }) => decision.accepted)).toMatchObject([{ user: 'alice', comment: 'after the restart' }]);
    for (const url of Object.values(project.urls)) await expectAppliedOnce(url, 'tmprestart_side_effects', VERSIONS);
    // Runs across both restarts were one run: the server kept it in its database file.
    expect((await client.workflow.getHandle(workflowId).describe()).runId).toBe(handle.firstExecutionRunId);
    expect(await Promise.race([worker.exited, sleep(100).then(() => 'running')])).toBe('running');
    // The history that survived two restarts replays cleanly and holds no database password.
    const history = await client.workflow.getHandle(workflowId).fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: bundle }, history, workflowId);
    expect(await historyText({ client } as Pick<Stack, 'client'> as Stack, workflowId)).not.toContain(PASSWORD);
    await client.connection.close();
  });
});
