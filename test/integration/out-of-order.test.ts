import { renameSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { pipelineStatus, sendDecision } from '../../cli/pipeline-client';
import type { PipelineStatus } from '../../core/pipeline';
import { assertBuilt, parseJsonOutput, runCli, type CliTarget } from '../helpers/processes';
import { query } from '../helpers/postgres';
import { migration, type ProjectSpec } from '../helpers/project';
import { replayWorkflows } from '../helpers/stack';
import { useSuite } from '../helpers/suite';
import { startWebhookReceiver } from '../helpers/webhook';

const APPLIED = '20240301000000_create_accounts.sql';
// Written on a branch in January, merged after March's migration ran everywhere.
const LATE = '20240115000000_create_late_branch.sql';
const NEXT = '20240401000000_create_next.sql';
const RENAMED = '20240501000000_create_late_branch.sql';

describe('out-of-order post-deploy versions are named, and refused when the project says so', () => {
  const suite = useSuite();

  /** A project whose March migration already ran on both environments, then a January file arrives. */
  async function lateBranchProject(prefix: string, spec: Omit<ProjectSpec, 'migrations'>) {
    assertBuilt();
    const project = await suite.project(prefix, { ...spec, migrations: { [APPLIED]: migration('CREATE TABLE accounts (id bigint PRIMARY KEY);') } });
    const taskQueue = suite.stack.newTaskQueue();
    await suite.stack.startWorker(project.config, taskQueue);
    const target: CliTarget = { address: suite.stack.address, taskQueue, configPath: project.configPath };
    const cli = (...args: string[]) => runCli(target, args);
    const first = await cli('pdm', 'execute', '--as', 'dave', '--json');
    expect(first.code, first.stderr).toBe(0);
    const { workflowId, runId } = parseJsonOutput<{ workflowId: string; runId: string }>(first);
    suite.workflowIds.push(workflowId);
    if (spec.environments.some((environment) => environment.approvalRoles)) {
      await suite.waitForStage(workflowId, 'waiting-approval');
      await sendDecision(suite.stack.client, workflowId, 'approve', { user: 'alice', role: 'release-manager' });
    }
    expect((await suite.stack.client.workflow.getHandle(workflowId, runId).result()).stage).toBe('complete');
    project.writeMigration(LATE, migration('CREATE TABLE late_branch (id bigint PRIMARY KEY);'));
    return { project, target, cli, workflowId };
  }

  const tableExists = async (url: string, table: string) => (await query(url, `SELECT to_regclass($1) AS t`, [table]))[0].t !== null;

  it('under the default (warn), names the late file in migrations pending, pdm execute, the started notification and the status, then applies it', async () => {
    const webhook = await startWebhookReceiver();
    onTestFinished(() => webhook.close());
    const { project, cli, workflowId } = await lateBranchProject('ooowarn', {
      environments: [{ name: 'warn-staging' }, { name: 'warn-production', approvalRoles: ['release-manager'] }],
      webhookUrl: webhook.url,
    });

    const pending = await cli('migrations', 'pending');
    expect(pending).toMatchObject({
      code: 0,
      stdout:
        'warn-staging: 1 pending\n  20240115000000  create_late_branch  (out of order: older than applied 20240301000000)\n' +
        'warn-production: 1 pending\n  20240115000000  create_late_branch  (out of order: older than applied 20240301000000)\n',
    });
    const pendingJson = parseJsonOutput<{ environments: { environment: string; pending: unknown[] }[] }>(await cli('migrations', 'pending', '--json'));
    expect(pendingJson.environments.map((entry) => entry.pending)).toEqual([
      [{ version: '20240115000000', name: 'create_late_branch', fileName: LATE, outOfOrder: { newestApplied: '20240301000000' } }],
      [{ version: '20240115000000', name: 'create_late_branch', fileName: LATE, outOfOrder: { newestApplied: '20240301000000' } }],
    ]);

    const named = `${LATE} on warn-staging and warn-production, older than applied 20240301000000`;
    const started = await cli('pdm', 'execute', '--as', 'dave', '--json');
    expect(started.code).toBe(0);
    expect(started.stderr.split('\n')[0]).toBe(`out of order: ${named}; they will be applied (migrations.outOfOrder: warn)`);
    const { runId } = parseJsonOutput<{ runId: string }>(started);

    const waiting = await suite.waitForStage(workflowId, 'waiting-approval');
    expect(waiting.outOfOrder).toEqual({
      policy: 'warn',
      environments: ['warn-staging', 'warn-production'].map((environment) => ({ environment, newestApplied: '20240301000000', files: [LATE], count: 1 })),
    });
    const text = await cli('pdm', 'status', workflowId);
    expect(text.stdout.split('\n')[1]).toBe(`  out of order (warn): ${named}`);
    const startedNotice = webhook.notifications.filter((notification) => notification.dbchange.event === 'started').at(-1);
    expect(startedNotice?.text).toBe(`post-deploy migrations started by dave; out of order (warn): ${named}`);

    await sendDecision(suite.stack.client, workflowId, 'approve', { user: 'alice', role: 'release-manager' });
    const result: PipelineStatus = await suite.stack.client.workflow.getHandle(workflowId, runId).result();
    expect(result.stage).toBe('complete');
    expect(result.outOfOrder?.environments.map((finding) => finding.environment)).toEqual(['warn-staging', 'warn-production']);
    for (const url of Object.values(project.urls)) expect(await tableExists(url, 'late_branch')).toBe(true);
  });

  it('under refuse, pdm execute refuses up front (exit 3); a pipeline started anyway blocks before the environment, and a retry after renaming the file to a new version runs it', async () => {
    const { project, cli } = await lateBranchProject('ooorefuse', { environments: [{ name: 'refuse-staging' }], outOfOrder: 'refuse' });
    project.writeMigration(NEXT, migration('CREATE TABLE next_step (id bigint PRIMARY KEY);'));

    const refused = await cli('pdm', 'execute', '--as', 'dave');
    expect(refused).toMatchObject({
      code: 3,
      stdout: '',
      stderr:
        `dbchange: out of order: ${LATE} on refuse-staging, older than applied 20240301000000 (migrations.outOfOrder: refuse); ` +
        'give it a new version (rename the file), or set migrations.outOfOrder: warn to apply it anyway; then run `dbchange pdm execute` again\n',
    });

    const handle = await suite.startPipeline(project);
    const blocked = await suite.waitForStage(handle.workflowId, 'blocked');
    const message =
      `out of order: ${LATE} on refuse-staging, older than applied 20240301000000 (migrations.outOfOrder: refuse); ` +
      'give it a new version (rename the file) and retry, or mark-complete to record it as done without running it';
    expect(blocked.lastError).toBe(message);
    expect(blocked.waitingFor).toBe(`blocked: ${message} — run \`dbchange resolve ${handle.workflowId} --as USER --action retry|mark-complete|abort\``);
    // Blocked before the environment: the in-order file waits too.
    const url = project.urls['refuse-staging'];
    expect(await tableExists(url, 'next_step')).toBe(false);

    const dir = join(project.dir, 'db/post_migrate');
    renameSync(join(dir, LATE), join(dir, RENAMED));
    await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'alice', action: 'retry', comment: 'renamed to a new version' });
    const result = await handle.result();
    expect(result.stage).toBe('complete');
    expect(result.outOfOrder).toBeUndefined();
    expect(result.results[0].migrations.map((item) => `${item.version}:${item.outcome}`)).toEqual(['20240401000000:applied', '20240501000000:applied']);
    expect(await tableExists(url, 'late_branch')).toBe(true);
  });

  it('under refuse, mark-complete records the out-of-order version on each environment as done without running it, and the rest runs', async () => {
    const { project } = await lateBranchProject('ooomark', { environments: [{ name: 'mark-staging' }, { name: 'mark-production' }], outOfOrder: 'refuse' });
    project.writeMigration(NEXT, migration('CREATE TABLE next_step (id bigint PRIMARY KEY);'));
    const handle = await suite.startPipeline(project);
    for (const environment of ['mark-staging', 'mark-production']) {
      const blocked = await suite.waitForStage(handle.workflowId, 'blocked');
      expect(blocked.environment).toBe(environment);
      // The block names no migration of its own: nothing ran there yet (staging's last one is not production's).
      expect(blocked.waitingFor).toMatch(new RegExp(`^blocked: out of order: ${LATE} on ${environment}, `));
      const answer = await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'bob', action: 'mark-complete', comment: 'superseded by the March table' });
      expect(answer.accepted).toBe(true);
      if (environment === 'mark-staging') {
        await expectNotBlockedOn(handle.workflowId, 'mark-staging');
      }
    }
    const result = await handle.result();
    expect(result.stage).toBe('complete');
    const outcomes = ['20240115000000:marked-complete', '20240401000000:applied'];
    expect(result.results.map((item) => item.migrations.map((m) => `${m.version}:${m.outcome}`))).toEqual([outcomes, outcomes]);
    for (const url of Object.values(project.urls)) {
      expect(await tableExists(url, 'late_branch')).toBe(false);
      expect(await tableExists(url, 'next_step')).toBe(true);
      expect(await query(url, `SELECT outcome, decided_by FROM dbchange_migration_log WHERE version = '20240115000000'`)).toEqual([{ outcome: 'marked-complete', decided_by: 'bob' }]);
    }
  });

  /** Waits until the pipeline has left its block on `environment` (it may block again elsewhere). */
  async function expectNotBlockedOn(workflowId: string, environment: string) {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const snapshot = await pipelineStatus(suite.stack.client, workflowId);
      if (!(snapshot.stage === 'blocked' && snapshot.environment === environment)) return;
      if (Date.now() > deadline) throw new Error(`${workflowId} is still blocked on ${environment}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('replays every history it produced without nondeterminism', async () => {
    expect(await replayWorkflows(suite.stack, [...new Set(suite.workflowIds)])).toBeGreaterThanOrEqual(6);
  });
});
