import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliError, EXIT } from '../../cli/output';
import { pipelineStatus, startPipeline } from '../../cli/pipeline-client';
import { assertBuilt, runCli, type CliTarget } from '../helpers/processes';
import { query } from '../helpers/postgres';
import { createProject, migration, type TestProject } from '../helpers/project';
import { createStack, eventually, replayWorkflows, type Stack } from '../helpers/stack';

const WORKFLOW_ID = 'pdm-conc-staging+conc-production';
const VERSION = '20240401000001';

describe('one pipeline at a time per set of environments', () => {
  let stack: Stack;
  let project: TestProject;

  beforeAll(async () => {
    assertBuilt();
    stack = await createStack();
    project = await createProject('conc', {
      environments: [{ name: 'conc-staging' }, { name: 'conc-production', approvalRoles: ['release-manager'] }],
      migrations: { [`${VERSION}_create_builds.sql`]: migration('CREATE TABLE conc_builds (id bigint PRIMARY KEY);') },
    });
  });
  afterAll(async () => {
    await stack?.close();
    await project?.cleanup();
  });

  it('refuses a second start while one waits at an approval gate, then the first is rejected with the CLI', async () => {
    const taskQueue = stack.newTaskQueue();
    await stack.startWorker(project.config, taskQueue);
    const target: CliTarget = { address: stack.address, taskQueue, configPath: project.configPath };
    const handle = await startPipeline(stack.client, project.config, { requestedBy: 'dave', taskQueue, packageVersion: '2.0.0' });
    expect(handle.workflowId).toBe(WORKFLOW_ID);
    await eventually(async () => (await pipelineStatus(stack.client, WORKFLOW_ID)).stage === 'waiting-approval', 'the production approval gate');

    const refusal = await startPipeline(stack.client, project.config, { requestedBy: 'erin', taskQueue }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refusal).toBeInstanceOf(CliError);
    expect((refusal as CliError).exitCode).toBe(EXIT.refused);
    expect((refusal as CliError).message).toContain(`pipeline ${WORKFLOW_ID} is already running`);

    const cli = await runCli(target, ['pdm', 'execute', '--as', 'erin', '--package', '2.0.1']);
    expect(cli.code).toBe(3);
    expect(cli.stdout).toBe('');
    expect(cli.stderr.trim()).toBe(`dbchange: pipeline ${WORKFLOW_ID} is already running; follow it with \`dbchange pdm status ${WORKFLOW_ID}\``);

    // Neither refused start touched the running pipeline: same run, same requester, still at the gate.
    expect((await handle.describe()).runId).toBe(handle.firstExecutionRunId);
    const stillWaiting = await pipelineStatus(stack.client, WORKFLOW_ID);
    expect(stillWaiting).toMatchObject({ stage: 'waiting-approval', environment: 'conc-production', requestedBy: 'dave', packageVersion: '2.0.0' });

    const rejected = await runCli(target, ['reject', WORKFLOW_ID, '--as', 'alice', '--reason', 'release postponed']);
    expect(rejected).toMatchObject({ code: 0, stdout: 'accepted: rejected conc-production\n' });

    const failure = await handle.result().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    const cause = (failure as WorkflowFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect((cause as ApplicationFailure).type).toBe('PipelineRejected');
    expect(cause?.message).toBe('rejected by alice: release postponed');

    const final = await pipelineStatus(stack.client, WORKFLOW_ID);
    expect(final.stage).toBe('rejected');
    expect(final.summary).toBe('conc-production not approved: rejected by alice: release postponed');
    expect(final.decisions).toEqual([
      expect.objectContaining({ kind: 'reject', user: 'alice', comment: 'release postponed', environment: 'conc-production', accepted: true }),
    ]);
    expect(final.results.map((result) => [result.environment, result.done, result.migrations.map((m) => m.outcome)])).toEqual([
      ['conc-staging', true, ['applied']],
      ['conc-production', false, []],
    ]);
    expect(await query(project.urls['conc-staging'], 'SELECT version FROM schema_migrations')).toEqual([{ version: VERSION }]);
    expect(await query(project.urls['conc-production'], `SELECT to_regclass('schema_migrations') AS t`)).toEqual([{ t: null }]);
  });

  it('replays the pipeline history it produced without nondeterminism', async () => {
    expect(await replayWorkflows(stack, [WORKFLOW_ID])).toBe(1);
  });
});
