import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineStatus } from '../../core/pipeline';
import { assertBuilt, parseJsonOutput, runCli, startWorkerProcess, stopWorkerProcesses, type CliTarget, type WorkerProcess } from '../helpers/processes';
import { query } from '../helpers/postgres';
import { createProject, migration, type TestProject } from '../helpers/project';
import { createStack, eventually, replayWorkflows, type Stack } from '../helpers/stack';
import { startPipeline } from '../../cli/pipeline-client';

const ENVIRONMENTS = ['cli-staging', 'cli-production'];
const WORKFLOW_ID = 'pdm-cli-staging+cli-production';
const FIRST = { version: '20240601000001', name: 'create_projects', fileName: '20240601000001_create_projects.sql' };
const SECOND = { version: '20240601000002', name: 'add_project_index', fileName: '20240601000002_add_project_index.sql' };
const FIRST_TEXT = migration('CREATE TABLE cli_projects (id bigint PRIMARY KEY, name text);');
const THIRD = { version: '20240601000003', name: 'create_members', fileName: '20240601000003_create_members.sql' };

interface PendingJson {
  version: number;
  kind: string;
  environments: { environment: string; pending: { version: string; name: string; fileName: string }[]; edited: { fileName: string }[] }[];
}

describe('the dbchange command, end to end with a worker process', () => {
  let stack: Stack;
  let project: TestProject;
  let target: CliTarget;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    assertBuilt();
    stack = await createStack();
    project = await createProject('cli', {
      environments: [{ name: 'cli-staging' }, { name: 'cli-production', approvalRoles: ['release-manager'] }],
      migrations: {
        [FIRST.fileName]: FIRST_TEXT,
        [SECOND.fileName]: migration('CREATE INDEX CONCURRENTLY IF NOT EXISTS cli_projects_name ON cli_projects (name);', { transaction: false }),
      },
    });
    target = { address: stack.address, taskQueue: stack.newTaskQueue(), configPath: project.configPath };
    workers.push(await startWorkerProcess(target));
  });
  afterAll(async () => {
    await stopWorkerProcesses(workers);
    await stack?.close();
    await project?.cleanup();
  });

  const cli = (...args: string[]) => runCli(target, args);

  async function statusOf(workflowId: string): Promise<{ code: number | null; status: PipelineStatus }> {
    const result = await cli('pdm', 'status', workflowId, '--json');
    const json = parseJsonOutput<{ version: number; kind: string; workflowId: string; status: PipelineStatus }>(result);
    expect(json).toMatchObject({ version: 1, kind: 'pdm-status', workflowId });
    return { code: result.code, status: json.status };
  }

  /**
   * Polls `pdm status` for one run until it reaches `stage` with no activity in flight; fails at once if the run
   * closes without reaching it. (The pipeline shows 'blocked' while its "blocked" notification is still being sent,
   * and refuses a resolve until that is done: see the report on workflows/pipeline.ts `block()`.)
   */
  async function waitForStage(workflowId: string, runId: string, stage: PipelineStatus['stage']) {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const current = await statusOf(workflowId);
      const execution = await stack.client.workflow.getHandle(workflowId, runId).describe();
      if (current.status.stage === stage && (execution.raw.pendingActivities ?? []).length === 0) return current;
      if (execution.status.name !== 'RUNNING' || Date.now() > deadline) {
        throw new Error(`${workflowId} did not reach ${stage}: workflow ${execution.status.name}, status ${JSON.stringify(current.status)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  const firstMigrationPath = () => join(project.dir, 'db/post_migrate', FIRST.fileName);
  const editFirstMigration = () => writeFileSync(firstMigrationPath(), FIRST_TEXT.replace('name text', 'name text NOT NULL'));
  const restoreFirstMigration = () => writeFileSync(firstMigrationPath(), FIRST_TEXT);

  async function expectVersions(staging: string[], production: string[]): Promise<void> {
    for (const [environment, expected] of [['cli-staging', staging], ['cli-production', production]] as const) {
      const rows = await query<{ version: string }>(project.urls[environment], 'SELECT version FROM schema_migrations ORDER BY version');
      expect(rows.map((row) => row.version), environment).toEqual(expected);
    }
  }

  it('lists pending migrations per environment as JSON', async () => {
    const result = await cli('migrations', 'pending', '--json');
    expect(result.code).toBe(0);
    const json = parseJsonOutput<PendingJson>(result);
    expect(json).toEqual({
      version: 1,
      kind: 'migrations-pending',
      environments: ENVIRONMENTS.map((environment) => ({ environment, database: 'main', pending: [FIRST, SECOND], edited: [] })),
    });

    const one = await cli('migrations', 'pending', '--env', 'cli-production');
    expect(one).toMatchObject({ code: 0, stdout: `cli-production: 2 pending\n  ${FIRST.version}  ${FIRST.name}\n  ${SECOND.version}  ${SECOND.name}\n` });
  });

  it('runs a pipeline from the CLI; approve by an unknown user is refused; status reports it complete', async () => {
    const started = await cli('pdm', 'execute', '--as', 'dave', '--package', '3.1.0', '--json');
    expect(started.code).toBe(0);
    expect(parseJsonOutput(started)).toMatchObject({ version: 1, kind: 'pdm-started', workflowId: WORKFLOW_ID });
    expect(started.stderr).toContain(`started ${WORKFLOW_ID}`);

    await eventually(async () => (await statusOf(WORKFLOW_ID)).status.stage === 'waiting-approval', 'the approval gate before cli-production');
    const waiting = await statusOf(WORKFLOW_ID);
    expect(waiting.code).toBe(2);
    expect(waiting.status.waitingFor).toBe('waiting for approval by release-manager before cli-production');

    const unknown = await cli('approve', WORKFLOW_ID, '--as', 'mallory', '--role', 'release-manager');
    expect(unknown).toMatchObject({ code: 3, stdout: 'refused: mallory is not a configured approver (add them under approvers in dbchange.yaml)\n' });
    expect((await statusOf(WORKFLOW_ID)).status.stage).toBe('waiting-approval');

    const approved = await cli('approve', WORKFLOW_ID, '--as', 'alice', '--role', 'release-manager', '--comment', 'QA green', '--json');
    expect(approved.code).toBe(0);
    expect(parseJsonOutput(approved)).toEqual({
      version: 1,
      kind: 'decision',
      workflowId: WORKFLOW_ID,
      decision: 'approve',
      accepted: true,
      reason: 'approved cli-production as release-manager',
    });

    const done = await eventually(async () => {
      const current = await statusOf(WORKFLOW_ID);
      return current.status.stage === 'complete' && current;
    }, 'the pipeline to complete');
    expect(done.code).toBe(0);
    expect(done.status).toMatchObject({ version: 2, kind: 'pdm', stage: 'complete', requestedBy: 'dave', packageVersion: '3.1.0' });
    expect(done.status.results.map((result) => [result.environment, result.done, result.migrations.map((m) => `${m.version}:${m.outcome}`)])).toEqual(
      ENVIRONMENTS.map((environment) => [environment, true, [`${FIRST.version}:applied`, `${SECOND.version}:applied`]]),
    );
    expect(done.status.decisions.map((decision) => [decision.kind, decision.user, decision.accepted])).toEqual([
      ['approve', 'mallory', false],
      ['approve', 'alice', true],
    ]);

    const migrationStatus = await cli('migrations', 'status', FIRST.version, '--json');
    expect(migrationStatus.code).toBe(0);
    const json = parseJsonOutput<{ migration: string; name: string; environments: Record<string, unknown>[] }>(migrationStatus);
    expect(json).toMatchObject({ version: 1, kind: 'migration-status', migration: FIRST.version, name: FIRST.name });
    expect(json.environments).toEqual(
      ENVIRONMENTS.map((environment) => ({ environment, database: 'main', applied: true, outcome: 'applied', at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), workflowId: WORKFLOW_ID })),
    );

    const list = await cli('pdm', 'status');
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`^${WORKFLOW_ID.replace(/\+/g, '\\+')}\\s+complete\\s+\\d{4}-`, 'm'));
    const listJson = parseJsonOutput<{ pipelines: { workflowId: string; status: string }[] }>(await cli('pdm', 'status', '--json'));
    expect(listJson.pipelines.filter((item) => item.workflowId === WORKFLOW_ID).map((item) => item.status)).toEqual(['complete']);
  });

  it('refuses an invalid dbchange.yaml with exit 3 and one line naming the key and its line', async () => {
    const url = project.urls['cli-staging'];
    const unknownKey = join(project.dir, 'unknown-key.yaml');
    writeFileSync(unknownKey, ['migrations:', '  postDeploy: db/post_migrate', 'environments:', '  - name: cli-staging', `    databaseUrl: ${url}`, '    colour: blue', ''].join('\n'));
    const missingVariable = join(project.dir, 'missing-variable.yaml');
    writeFileSync(
      missingVariable,
      ['migrations:', '  postDeploy: db/post_migrate', 'environments:', '  - name: cli-staging', `    databaseUrl: ${url}`, '    qa: { command: "run-qa ${CLI_QA_TARGET}" }', ''].join('\n'),
    );

    const cases = [
      { file: unknownKey, reason: 'line 6: environments.0.colour: unknown key (check its spelling)' },
      { file: missingVariable, reason: 'line 6: environments.0.qa.command: environment variable CLI_QA_TARGET is not set' },
    ];
    for (const { file, reason } of cases) {
      const result = await runCli({ ...target, configPath: file }, ['pdm', 'execute', '--as', 'dave'], { env: { CLI_QA_TARGET: undefined } });
      expect(result.code).toBe(3);
      expect(result.stdout).toBe('');
      const lines = result.stderr.trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(reason);
      expect(lines[0]).toContain(file);
    }
  });

  it('migrations pending flags an applied migration that was edited afterwards', async () => {
    editFirstMigration();
    project.writeMigration(THIRD.fileName, migration('CREATE TABLE cli_members (id bigint PRIMARY KEY);'));

    const pending = await cli('migrations', 'pending');
    expect(pending.code).toBe(0);
    for (const environment of ENVIRONMENTS) {
      expect(pending.stdout).toContain(`${environment}: 1 pending\n  ${THIRD.version}  ${THIRD.name}\n`);
      expect(pending.stdout).toContain(`  ! corrupted migrations: ${FIRST.fileName} changed after it was applied on ${environment}; `);
    }
    const pendingJson = parseJsonOutput<PendingJson>(await cli('migrations', 'pending', '--json'));
    expect(pendingJson.environments.map((entry) => entry.edited.map((edited) => edited.fileName))).toEqual([[FIRST.fileName], [FIRST.fileName]]);
  });

  it('pdm execute refuses (exit 3) to start over the edited file; a pipeline started without that check blocks on it, offers exactly retry|abort, and abort ends it', async () => {
    const refused = await cli('pdm', 'execute', '--as', 'dave', '--package', '3.2.0', '--json');
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain(`dbchange: corrupted migrations: ${FIRST.fileName} changed after it was applied on cli-staging; `);

    const { firstExecutionRunId: runId } = await startPipeline(stack.client, project.config, { requestedBy: 'dave', packageVersion: '3.2.0', taskQueue: target.taskQueue });
    try {
      const blocked = await waitForStage(WORKFLOW_ID, runId, 'blocked');
      expect(blocked.code).toBe(2);
      expect(blocked.status.environment).toBe('cli-staging');
      expect(blocked.status.lastError).toContain(`corrupted migrations: ${FIRST.fileName} changed after it was applied on cli-staging`);
      expect(blocked.status.waitingFor).toContain(`— run \`dbchange resolve ${WORKFLOW_ID} --as USER --action retry|abort\``);
      const markComplete = await cli('resolve', WORKFLOW_ID, '--as', 'alice', '--action', 'mark-complete');
      expect(markComplete).toMatchObject({ code: 3, stdout: 'refused: "action" must be one of retry, abort; got "mark-complete"\n' });

      const aborted = await cli('resolve', WORKFLOW_ID, '--as', 'alice', '--action', 'abort', '--comment', 'restore the file');
      expect(aborted).toMatchObject({ code: 0, stdout: 'accepted: resolved: abort\n' });
      const final = await waitForStage(WORKFLOW_ID, runId, 'aborted');
      expect(final.code).toBe(1);
      expect(final.status.summary).toContain('aborted by alice ("restore the file") on cli-staging');
      await expectVersions([FIRST.version, SECOND.version], [FIRST.version, SECOND.version]);
    } finally {
      await stack.client.workflow.getHandle(WORKFLOW_ID, runId).terminate('test cleanup').catch(() => undefined);
    }
  });

  it('a migration edited while a pipeline waits blocks it before the next environment; resolve --action abort ends it', async () => {
    restoreFirstMigration();
    const started = await cli('pdm', 'execute', '--as', 'dave', '--package', '3.3.0', '--json');
    expect(started.code).toBe(0);
    const { runId } = parseJsonOutput<{ runId: string }>(started);
    await waitForStage(WORKFLOW_ID, runId, 'waiting-approval');
    await expectVersions([FIRST.version, SECOND.version, THIRD.version], [FIRST.version, SECOND.version]);

    editFirstMigration();
    expect(await cli('approve', WORKFLOW_ID, '--as', 'carol', '--role', 'release-manager')).toMatchObject({ code: 0 });
    const blocked = await waitForStage(WORKFLOW_ID, runId, 'blocked');
    expect(blocked.code).toBe(2);
    expect(blocked.status.environment).toBe('cli-production');
    expect(blocked.status.lastError).toBe(
      `corrupted migrations: ${FIRST.fileName} changed after it was applied on cli-production; restore the applied version and put the change in a new migration`,
    );
    const text = await cli('pdm', 'status', WORKFLOW_ID);
    expect(text.code).toBe(2);
    expect(text.stdout).toContain(`last error: corrupted migrations: ${FIRST.fileName}`);

    const aborted = await cli('resolve', WORKFLOW_ID, '--as', 'alice', '--action', 'abort', '--comment', 'restore the file');
    expect(aborted).toMatchObject({ code: 0, stdout: 'accepted: resolved: abort\n' });
    const final = await waitForStage(WORKFLOW_ID, runId, 'aborted');
    expect(final.code).toBe(1);
    expect(final.status.summary).toContain('aborted by alice ("restore the file") on cli-production');
    expect((await stack.client.workflow.getHandle(WORKFLOW_ID, runId).describe()).status.name).toBe('FAILED');
    // Production got nothing new.
    await expectVersions([FIRST.version, SECOND.version, THIRD.version], [FIRST.version, SECOND.version]);
  });

  it('replays the pipeline histories it produced without nondeterminism', async () => {
    expect(await replayWorkflows(stack, [WORKFLOW_ID])).toBe(3);
  });
});
