import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { pipelineStatus, sendDecision } from '../../cli/pipeline-client';
import { checksumOf } from '../../core/migration-dir';
import { assertBuilt, parseJsonOutput, runCli, type CliTarget } from '../helpers/processes';
import { query } from '../helpers/postgres';
import { migration, type ProjectSpec, type TestProject } from '../helpers/project';
import { eventually, replayWorkflows } from '../helpers/stack';
import { useSuite } from '../helpers/suite';

const MEMBERS = '20240601000003_create_members.sql';
const MEMBERS_TEXT = migration('CREATE TABLE members (id bigint PRIMARY KEY);');
// The edit a reviewer never saw: production would get a column staging never had.
const EDITED_TEXT = migration('CREATE TABLE members (id bigint PRIMARY KEY, email text NOT NULL);');
const RAN = checksumOf(MEMBERS_TEXT).slice(0, 12);
const EDITED = checksumOf(EDITED_TEXT).slice(0, 12);

describe('promotion carries exactly what ran on the earlier environments', () => {
  const suite = useSuite();

  /** A project whose pipelines start through the compiled CLI, served by an in-process worker. */
  async function cliProject(prefix: string, spec: Omit<ProjectSpec, 'migrations'>) {
    assertBuilt();
    const project = await suite.project(prefix, { ...spec, migrations: { [MEMBERS]: MEMBERS_TEXT } });
    const taskQueue = suite.stack.newTaskQueue();
    await suite.stack.startWorker(project.config, taskQueue);
    const target: CliTarget = { address: suite.stack.address, taskQueue, configPath: project.configPath };
    return { project, target, cli: (...args: string[]) => runCli(target, args) };
  }

  /** `pdm execute` that must start; waits for the pipeline to end and returns its final status. */
  async function executeToEnd(cli: (...args: string[]) => ReturnType<typeof runCli>, ...args: string[]) {
    const started = await cli('pdm', 'execute', '--as', 'dave', '--json', ...args);
    expect(started.code, started.stderr).toBe(0);
    const { workflowId, runId } = parseJsonOutput<{ workflowId: string; runId: string }>(started);
    suite.workflowIds.push(workflowId);
    return { started, result: await suite.stack.client.workflow.getHandle(workflowId, runId).result() };
  }

  const editMembers = (project: TestProject) => project.writeMigration(MEMBERS, EDITED_TEXT);
  const restoreMembers = (project: TestProject) => project.writeMigration(MEMBERS, MEMBERS_TEXT);
  const ledgerChecksums = (url: string) => query<{ checksum: string }>(url, `SELECT checksum FROM dbchange_migration_log WHERE version = '20240601000003' ORDER BY id`);

  it('refuses `pdm execute --env production` (exit 3) for a file edited after staging ran it, naming the file, both checksums and both environments, until the file is restored', async () => {
    const { project, cli } = await cliProject('promo', { environments: [{ name: 'promo-staging' }, { name: 'promo-production' }] });
    expect((await executeToEnd(cli, '--env', 'promo-staging')).result.stage).toBe('complete');

    editMembers(project);
    const expected =
      `dbchange: promotion refused: ${MEMBERS} would run on promo-production as ${EDITED}, but promo-staging ran ${RAN}; ` +
      'what runs must be what ran before: restore the file as it ran on promo-staging and put the change in a new migration; then run `dbchange pdm execute` again\n';
    for (let attempt = 0; attempt < 2; attempt++) {
      const refused = await cli('pdm', 'execute', '--env', 'promo-production', '--as', 'dave');
      expect(refused).toMatchObject({ code: 3, stdout: '', stderr: expected });
    }
    await expect(suite.stack.client.workflow.getHandle('pdm-promo-production').describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
    expect(await query(project.urls['promo-production'], `SELECT to_regclass('schema_migrations') AS t`)).toEqual([{ t: null }]);

    restoreMembers(project);
    expect((await executeToEnd(cli, '--env', 'promo-production')).result.stage).toBe('complete');
    const ran = checksumOf(MEMBERS_TEXT);
    expect(await ledgerChecksums(project.urls['promo-staging'])).toEqual([{ checksum: ran }]);
    expect(await ledgerChecksums(project.urls['promo-production'])).toEqual([{ checksum: ran }]);
    expect(await query(project.urls['promo-production'], `SELECT column_name FROM information_schema.columns WHERE table_name = 'members' ORDER BY column_name`)).toEqual([{ column_name: 'id' }]);
  });

  it('refuses a pipeline over both environments up front (exit 3) when staging ran a file edited since, instead of starting one that blocks', async () => {
    const { project, cli } = await cliProject('promoboth', { environments: [{ name: 'both-staging' }, { name: 'both-production' }] });
    expect((await executeToEnd(cli, '--env', 'both-staging')).result.stage).toBe('complete');

    editMembers(project);
    const refused = await cli('pdm', 'execute', '--as', 'dave', '--json');
    expect(refused.code).toBe(3);
    expect(refused.stdout).toBe('');
    const lines = refused.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe(
      `dbchange: corrupted migrations: ${MEMBERS} changed after it was applied on both-staging; restore the applied version and put the change in a new migration; ` +
        `promotion refused: ${MEMBERS} would run on both-production as ${EDITED}, but both-staging ran ${RAN}; ` +
        'what runs must be what ran before: restore the file as it ran on both-staging and put the change in a new migration; then run `dbchange pdm execute` again',
    );
    await expect(suite.stack.client.workflow.getHandle('pdm-both-staging+both-production').describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
  });

  it('when `pdm execute` cannot read the ledgers it says so in one line and starts; the pipeline blocks before production with the same message, offering exactly retry|abort', async () => {
    const { project, target, cli } = await cliProject('promolate', { environments: [{ name: 'late-staging' }, { name: 'late-production' }] });
    expect((await executeToEnd(cli, '--env', 'late-staging')).result.stage).toBe('complete');
    editMembers(project);

    // The CLI's copy of dbchange.yaml names the URLs by variable, as where secrets live only on the worker.
    const withoutSecrets = join(project.dir, 'dbchange-cli.yaml');
    writeFileSync(
      withoutSecrets,
      readFileSync(project.configPath, 'utf8')
        .replace(project.urls['late-staging'], '${LATE_STAGING_DATABASE_URL}')
        .replace(project.urls['late-production'], '${LATE_PRODUCTION_DATABASE_URL}'),
    );
    const started = await runCli({ ...target, configPath: withoutSecrets }, ['pdm', 'execute', '--env', 'late-production', '--as', 'dave', '--json']);
    expect(started.code).toBe(0);
    expect(started.stderr.split('\n')[0]).toBe(
      'could not check late-staging, late-production up front (late-staging: ${LATE_STAGING_DATABASE_URL} not set here; late-production: ${LATE_PRODUCTION_DATABASE_URL} not set here); ' +
        'the pipeline checks edited files, promotion checksums and out-of-order versions before each environment',
    );
    const { workflowId, runId } = parseJsonOutput<{ workflowId: string; runId: string }>(started);
    suite.workflowIds.push(workflowId);

    const blocked = await suite.waitForStage(workflowId, 'blocked');
    const message = `promotion refused: ${MEMBERS} would run on late-production as ${EDITED}, but late-staging ran ${RAN}; what runs must be what ran before: restore the file as it ran on late-staging and put the change in a new migration`;
    expect(blocked.environment).toBe('late-production');
    expect(blocked.lastError).toBe(message);
    expect(blocked.waitingFor).toBe(`blocked: ${message} — run \`dbchange resolve ${workflowId} --as USER --action retry|abort\``);
    expect(await query(project.urls['late-production'], `SELECT to_regclass('schema_migrations') AS t`)).toEqual([{ t: null }]);

    const markComplete = await cli('resolve', workflowId, '--as', 'alice', '--action', 'mark-complete');
    expect(markComplete).toMatchObject({ code: 3, stdout: 'refused: "action" must be one of retry, abort; got "mark-complete"\n' });
    // A retry before the file is restored blocks again.
    expect(await cli('resolve', workflowId, '--as', 'alice', '--action', 'retry')).toMatchObject({ code: 0 });
    await eventually(async () => {
      const snapshot = await pipelineStatus(suite.stack.client, workflowId);
      return snapshot.stage === 'blocked' && snapshot.decisions.filter((decision) => decision.accepted).length === 1;
    }, 'the second block');

    restoreMembers(project);
    expect(await cli('resolve', workflowId, '--as', 'alice', '--action', 'retry', '--comment', 'file restored')).toMatchObject({ code: 0 });
    const result = await suite.stack.client.workflow.getHandle(workflowId, runId).result();
    expect(result.stage).toBe('complete');
    expect(await ledgerChecksums(project.urls['late-production'])).toEqual([{ checksum: checksumOf(MEMBERS_TEXT) }]);
  });

  it('blocks the next environment of one pipeline when a file staging ran is edited while the pipeline waits for approval', async () => {
    const project = await suite.project('promowait', {
      environments: [{ name: 'wait-staging' }, { name: 'wait-production', approvalRoles: ['release-manager'] }],
      migrations: { [MEMBERS]: MEMBERS_TEXT },
    });
    const handle = await suite.startPipeline(project);
    await suite.waitForStage(handle.workflowId, 'waiting-approval');
    editMembers(project);
    await sendDecision(suite.stack.client, handle.workflowId, 'approve', { user: 'alice', role: 'release-manager' });
    const blocked = await suite.waitForStage(handle.workflowId, 'blocked');
    expect(blocked.environment).toBe('wait-production');
    expect(blocked.lastError).toMatch(new RegExp(`^promotion refused: ${MEMBERS} would run on wait-production as ${EDITED}, but wait-staging ran ${RAN}`));
    expect(await query(project.urls['wait-production'], `SELECT to_regclass('members') AS t`)).toEqual([{ t: null }]);
    await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'alice', action: 'abort' });
    await expect(handle.result()).rejects.toThrow();
  });

  it('replays every history it produced without nondeterminism', async () => {
    expect(await replayWorkflows(suite.stack, [...new Set(suite.workflowIds)])).toBeGreaterThanOrEqual(6);
  });
});
