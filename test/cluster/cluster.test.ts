// dbchange on a self-hosted Temporal cluster: temporal-server v1.29.1 from the Go module proxy, PostgreSQL
// persistence and SQL visibility, four history shards, and frontend, history, matching and worker as separate
// processes (scripts/temporal-cluster.sh). Everything goes through the `dbchange` CLI and worker processes, and
// the faults are the cluster's own: one service SIGKILLed at a time, or all four stopped and started again.
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changeRequestStatus } from '../../cli/change-client';
import { pipelineStatus } from '../../cli/pipeline-client';
import type { ChangeStage } from '../../core/change-status';
import type { PipelineStage } from '../../core/pipeline';
import { ALL_SEARCH_ATTRIBUTES } from '../../core/search-attributes';
import { startTestCluster, type TestCluster } from '../helpers/cluster';
import { query } from '../helpers/postgres';
import { assertBuilt, parseJsonOutput, runCli, startWorkerProcess, stopWorkerProcesses, type CliTarget, type WorkerProcess } from '../helpers/processes';
import { createProject, migration, type TestProject } from '../helpers/project';
import { eventually } from '../helpers/stack';

const SLOW_STEP_S = 1;
const PASSWORD = 'cluster-db-password-5c1e07a9';
const versions = (prefix: string, count: number) => Array.from({ length: count }, (_, index) => `${prefix}${String(index + 1).padStart(2, '0')}`);
/** Each migration records that it ran in a side table, so a second run of any of them shows. */
const slowMigrations = (list: string[]) =>
  Object.fromEntries(list.map((version) => [`${version}_step.sql`, migration(`INSERT INTO side_effects (version) VALUES ('${version}');\nSELECT pg_sleep(${SLOW_STEP_S});`)]));

async function expectAppliedOnce(url: string, expected: string[]): Promise<void> {
  expect((await query<{ version: string }>(url, 'SELECT version FROM schema_migrations ORDER BY version')).map((row) => row.version)).toEqual(expected);
  expect(await query(url, 'SELECT version, count(*)::int AS n FROM side_effects GROUP BY version ORDER BY version')).toEqual(expected.map((version) => ({ version, n: 1 })));
}

/** Takes 127.0.0.1:7233 for the whole file when nobody else has it, so the cluster must do without the usual port. */
async function occupyUsualPort(): Promise<Server | undefined> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(undefined)); // someone else's dev server has it already: just as good
    server.listen(7233, '127.0.0.1', () => resolve(server));
  });
}

describe('on a self-hosted cluster: four services, PostgreSQL persistence, SQL visibility', () => {
  let usualPort: Server | undefined;
  let cluster: TestCluster;
  let client: Client;
  let firstStartLog = '';
  const projects: TestProject[] = [];
  const workers: WorkerProcess[] = [];

  const connect = async () => {
    await client?.connection.close().catch(() => undefined);
    client = new Client({ connection: await Connection.connect({ address: cluster.address }), namespace: 'default' });
  };

  beforeAll(async () => {
    assertBuilt();
    usualPort = await occupyUsualPort();
    cluster = await startTestCluster('cl');
    firstStartLog = cluster.lastStartLog;
    console.info(`cluster: started in ${cluster.lastStartSeconds.toFixed(1)} s at ${cluster.address}`);
    await connect();
  }, 240_000);
  afterAll(async () => {
    await stopWorkerProcesses(workers, 5_000);
    await client?.connection.close().catch(() => undefined);
    await cluster?.destroy();
    await Promise.all(projects.map((project) => project.cleanup()));
    await new Promise<void>((resolve) => (usualPort ? usualPort.close(() => resolve()) : resolve()));
  }, 120_000);

  /** A project whose databases have the side table, and one `dbchange worker` process on its own task queue. */
  async function projectWithWorker(prefix: string, spec: Parameters<typeof createProject>[1], workerCount = 1) {
    const project = await createProject(prefix, { password: PASSWORD, ...spec });
    projects.push(project);
    for (const url of Object.values(project.urls)) await query(url, 'CREATE TABLE side_effects (id serial PRIMARY KEY, version text NOT NULL)');
    const target: CliTarget = { address: cluster.address, taskQueue: `cluster-${prefix}`, configPath: project.configPath };
    const own: WorkerProcess[] = [];
    for (let index = 0; index < workerCount; index++) own.push(await startWorkerProcess(target));
    workers.push(...own);
    const cli = async (args: string[], expectedCode = 0) => {
      const result = await runCli(target, args, { timeoutMs: 60_000 });
      if (result.code !== expectedCode) throw new Error(`dbchange ${args.join(' ')} exited ${result.code}, expected ${expectedCode}: ${result.stderr}${result.stdout}`);
      return result;
    };
    return { project, target, workers: own, cli };
  }

  /** Polls a pipeline's status through the cluster until it reaches `stage`; a service that is down fails a poll, not the wait. */
  function waitForPipeline(workflowId: string, stage: PipelineStage, timeoutMs = 90_000) {
    return eventually(async () => {
      const status = await pipelineStatus(client, workflowId);
      return status.stage === stage && status;
    }, `${workflowId} to reach ${stage}`, timeoutMs, 250);
  }
  function waitForChange(workflowId: string, stage: ChangeStage, timeoutMs = 90_000) {
    return eventually(async () => {
      const status = await changeRequestStatus(client, workflowId);
      return status.stage === stage && status;
    }, `${workflowId} to reach ${stage}`, timeoutMs, 250);
  }

  const startedIds: { pipeline?: string; change?: string } = {};

  it('starts without the usual port, and `dbchange setup` finds its search attributes registered on SQL visibility', async () => {
    expect(cluster.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(cluster.address).not.toBe('127.0.0.1:7233');
    // The script ran `dbchange setup` on the new namespace as a user would, and it added every attribute.
    expect(firstStartLog).toContain(`namespace default: added ${ALL_SEARCH_ATTRIBUTES.map((key) => key.name).join(', ')}`);
    const target: CliTarget = { address: cluster.address, taskQueue: 'cluster-setup', configPath: join(process.cwd(), 'examples/dbchange.yaml') };
    const again = await runCli(target, ['setup']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('namespace default: nothing to add; already present');
    const { customAttributes } = await client.connection.operatorService.listSearchAttributes({ namespace: 'default' });
    for (const key of ALL_SEARCH_ATTRIBUTES) expect(customAttributes?.[key.name], key.name).toBeDefined();
  });

  it('runs a pipeline through an approval gate from the CLI', { timeout: 180_000 }, async () => {
    const list = versions('202411300100', 3);
    const { project, cli } = await projectWithWorker('clpipe', {
      environments: [{ name: 'clp-staging' }, { name: 'clp-production', approvalRoles: ['release-manager'] }],
      migrations: slowMigrations(list),
    });
    const { workflowId } = parseJsonOutput<{ workflowId: string }>(await cli(['pdm', 'execute', '--as', 'dave', '--json']));
    startedIds.pipeline = workflowId;
    const waiting = await waitForPipeline(workflowId, 'waiting-approval');
    expect(waiting.waitingFor).toBe('waiting for approval by release-manager before clp-production');
    await cli(['approve', workflowId, '--as', 'alice', '--role', 'release-manager']);
    const done = await waitForPipeline(workflowId, 'complete');
    expect(done.results.map((result) => [result.environment, result.migrations.map((outcome) => outcome.outcome)])).toEqual([
      ['clp-staging', ['applied', 'applied', 'applied']],
      ['clp-production', ['applied', 'applied', 'applied']],
    ]);
    for (const url of Object.values(project.urls)) await expectAppliedOnce(url, list);
  });

  it('runs a change request and rolls it back from the CLI', { timeout: 180_000 }, async () => {
    const { project, cli } = await projectWithWorker('clcr', {
      environments: [{ name: 'clc-staging' }],
      migrations: {},
      approvers: { alice: ['release-manager'], carol: ['reviewer'] },
      changeRequests: { rollbackWindow: '10m' },
    });
    const file = join(project.dir, 'add-flag.yaml');
    writeFileSync(
      file,
      [
        'id: add-flag-cluster',
        'title: Add a flag column',
        'criticality: C3',
        'requestedBy: alice',
        'environments: [clc-staging]',
        'steps:',
        '  - id: add-column',
        '    sql: ALTER TABLE side_effects ADD COLUMN IF NOT EXISTS flagged boolean',
        'rollback:',
        '  - id: drop-column',
        '    sql: ALTER TABLE side_effects DROP COLUMN IF EXISTS flagged',
        '',
      ].join('\n'),
    );
    const { checksum } = parseJsonOutput<{ checksum: string }>(await cli(['cr', 'validate', file, '--json']));
    await cli(['cr', 'execute', file]);
    const workflowId = 'cr-add-flag-cluster';
    startedIds.change = workflowId;
    await waitForChange(workflowId, 'waiting-approval');
    await cli(['approve', workflowId, '--as', 'carol', '--role', 'reviewer', '--checksum', checksum]);
    await waitForChange(workflowId, 'complete');
    const columns = () => query<{ n: number }>(project.urls['clc-staging'], `SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'side_effects' AND column_name = 'flagged'`);
    expect(await columns()).toEqual([{ n: 1 }]);

    await cli(['cr', 'rollback', 'add-flag-cluster', '--as', 'alice', '--reason', 'the flag is not needed']);
    const rolledBack = await waitForChange(workflowId, 'rolled-back');
    expect(rolledBack.steps.filter((step) => step.phase === 'rollback').map((step) => [step.id, step.outcome])).toEqual([['drop-column', 'applied']]);
    expect(await columns()).toEqual([{ n: 0 }]);
  });

  it('answers visibility queries by DbChangeStatus and DbChangeEnvironment from SQL visibility, and refuses ORDER BY', async () => {
    expect(startedIds.pipeline && startedIds.change, 'the two tests before this one started a pipeline and a change').toBeTruthy();
    const idsOf = async (filter: string) => {
      const ids: string[] = [];
      for await (const execution of client.workflow.list({ query: filter })) ids.push(execution.workflowId);
      return ids.sort();
    };
    // Visibility is written after the workflow's own state: it may trail by a moment.
    await eventually(async () => (await idsOf(`DbChangeStatus = 'complete' AND DbChangeEnvironment = 'clp-production'`)).length === 1, 'the pipeline in visibility');
    expect(await idsOf(`DbChangeStatus = 'complete' AND DbChangeEnvironment = 'clp-production'`)).toEqual([startedIds.pipeline]);
    await eventually(async () => (await idsOf(`DbChangeStatus = 'rolled-back'`)).length === 1, 'the change in visibility');
    expect(await idsOf(`DbChangeStatus = 'rolled-back' AND DbChangeEnvironment = 'clc-staging'`)).toEqual([startedIds.change]);
    expect(await idsOf(`DbChangeEnvironment IN ('clp-staging', 'clp-production', 'clc-staging') AND DbChangeKind = 'cr'`)).toEqual([startedIds.change]);
    const { count } = await client.workflow.count(`DbChangeEnvironment = 'clp-production'`);
    expect(count).toBe(1);
    // The SQL visibility store (PostgreSQL here, SQLite in the dev server) sorts by close time itself and has no ORDER BY.
    const refused = await idsOf(`DbChangeStatus = 'complete' ORDER BY StartTime`).then(
      () => 'accepted',
      (error: Error) => `${error.message}: ${String((error.cause as Error | undefined)?.message ?? error.cause)}`,
    );
    console.info(`cluster: ORDER BY answered "${refused}"`);
    expect(refused).toMatch(/order by/i);
  });

  it('finishes a pipeline whose history service was SIGKILLed mid-migration, applying each migration once', { timeout: 240_000 }, async () => {
    const list = versions('202411300200', 8);
    const { project, cli } = await projectWithWorker('clhist', { environments: [{ name: 'clh-staging' }], migrations: slowMigrations(list) });
    const { workflowId } = parseJsonOutput<{ workflowId: string }>(await cli(['pdm', 'execute', '--as', 'dave', '--json']));
    await eventually(async () => ((await pipelineStatus(client, workflowId)).migration?.index ?? 0) >= 3, 'the third migration to start', 60_000, 200);

    const atKill = await pipelineStatus(client, workflowId);
    const pid = await cluster.kill('history');
    const downSince = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    await cluster.start();
    console.info(`cluster: history (pid ${pid}) SIGKILLed during migration ${atKill.migration?.index} of ${atKill.migration?.total}, down for ${Date.now() - downSince} ms, restarted in ${cluster.lastStartSeconds.toFixed(1)} s`);

    const done = await waitForPipeline(workflowId, 'complete', 150_000).catch((error: Error) => {
      throw new Error(`${error.message}\nhistory log:\n${cluster.logTail('history')}`);
    });
    expect(done.results[0].migrations.map((outcome) => outcome.version)).toEqual(list);
    await expectAppliedOnce(project.urls['clh-staging'], list);
  });

  it('counts an approval sent after the matching service was SIGKILLed during the wait and started again', { timeout: 180_000 }, async () => {
    const list = versions('202411300300', 2);
    const { project, cli } = await projectWithWorker('clmatch', {
      environments: [{ name: 'clm-staging' }, { name: 'clm-production', approvalRoles: ['release-manager'] }],
      migrations: slowMigrations(list),
    });
    const { workflowId } = parseJsonOutput<{ workflowId: string }>(await cli(['pdm', 'execute', '--as', 'dave', '--json']));
    await waitForPipeline(workflowId, 'waiting-approval');

    await cluster.kill('matching');
    await cluster.start();
    const approved = await cli(['approve', workflowId, '--as', 'alice', '--role', 'release-manager', '--json']);
    expect(parseJsonOutput(approved)).toMatchObject({ decision: 'approve', accepted: true });
    const done = await waitForPipeline(workflowId, 'complete', 120_000);
    expect(done.decisions.map((decision) => [decision.kind, decision.user, decision.accepted])).toEqual([['approve', 'alice', true]]);
    for (const url of Object.values(project.urls)) await expectAppliedOnce(url, list);
  });

  it('applies each migration once when one of two worker processes is SIGKILLed mid-migration', { timeout: 240_000 }, async () => {
    const list = versions('202411300400', 6);
    const { project, cli, workers: pair } = await projectWithWorker('clwork', { environments: [{ name: 'clw-staging' }], migrations: slowMigrations(list) }, 2);
    const { workflowId } = parseJsonOutput<{ workflowId: string }>(await cli(['pdm', 'execute', '--as', 'dave', '--json']));
    const handle = client.workflow.getHandle(workflowId);
    // The worker running the batch is the one named in the pending activity; its identity starts with its pid.
    const running = await eventually(async () => {
      if (((await pipelineStatus(client, workflowId)).migration?.index ?? 0) < 2) return false;
      const activity = (await handle.describe()).raw.pendingActivities?.find((pending) => pending.lastWorkerIdentity);
      return activity && pair.find((worker) => activity.lastWorkerIdentity!.startsWith(`${worker.pid}@`));
    }, 'a worker to run the second migration', 60_000, 100);
    const atKill = await pipelineStatus(client, workflowId);
    await running.kill('SIGKILL');
    console.info(`cluster: worker ${running.pid} SIGKILLed during migration ${atKill.migration?.index} of ${atKill.migration?.total}`);
    const survivor = pair.find((worker) => worker !== running)!;

    const done = await waitForPipeline(workflowId, 'complete', 180_000);
    expect(done.results[0].migrations.map((outcome) => outcome.version)).toEqual(list);
    await expectAppliedOnce(project.urls['clw-staging'], list);
    expect(await Promise.race([survivor.exited, new Promise((resolve) => setTimeout(() => resolve('running'), 100))])).toBe('running');
  });

  it('resumes a change request parked at its approval after all four services were stopped and started again', { timeout: 240_000 }, async () => {
    const { project, cli } = await projectWithWorker('clpark', {
      environments: [{ name: 'clr-staging' }],
      migrations: {},
      approvers: { alice: ['release-manager'], carol: ['reviewer'] },
    });
    const file = join(project.dir, 'parked.yaml');
    writeFileSync(
      file,
      ['id: parked-cluster', 'title: Add an index while parked', 'criticality: C3', 'requestedBy: alice', 'environments: [clr-staging]', 'steps:', '  - id: add-index', '    sql: CREATE INDEX IF NOT EXISTS side_effects_version ON side_effects (version)', ''].join('\n'),
    );
    const { checksum } = parseJsonOutput<{ checksum: string }>(await cli(['cr', 'validate', file, '--json']));
    await cli(['cr', 'execute', file]);
    const workflowId = 'cr-parked-cluster';
    await waitForChange(workflowId, 'waiting-approval');

    await cluster.stop();
    expect(['frontend', 'history', 'matching', 'worker'].filter((service) => cluster.isRunning(service as 'history'))).toEqual([]);
    await cluster.start();
    await connect();
    expect((await changeRequestStatus(client, workflowId)).stage).toBe('waiting-approval');
    await cli(['approve', workflowId, '--as', 'carol', '--role', 'reviewer', '--checksum', checksum]);
    const done = await waitForChange(workflowId, 'complete', 120_000);
    expect(done.steps.map((step) => [step.id, step.outcome])).toEqual([['add-index', 'applied']]);
    expect(await query(project.urls['clr-staging'], `SELECT indexname FROM pg_indexes WHERE indexname = 'side_effects_version'`)).toEqual([{ indexname: 'side_effects_version' }]);
  });
});
