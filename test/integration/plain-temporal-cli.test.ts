import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PIPELINE_WORKFLOW_TYPE } from '../../core/pipeline';
import { query } from '../helpers/postgres';
import { createProject, migration, type TestProject } from '../helpers/project';
import { createStack, replayWorkflows, type Stack } from '../helpers/stack';

const run = promisify(execFile);

describe('starting a pipeline without dbchange installed', () => {
  let stack: Stack;
  let project: TestProject;
  let taskQueue: string;

  beforeAll(async () => {
    stack = await createStack();
    project = await createProject('plain', {
      environments: [{ name: 'plain-env' }],
      migrations: { '20240601000001_create_audit_events.sql': migration('CREATE TABLE audit_events (id bigint PRIMARY KEY);') },
    });
    taskQueue = stack.newTaskQueue();
    await stack.startWorker(project.config, taskQueue);
  });
  afterAll(async () => {
    await stack?.close();
    await project?.cleanup();
  });

  function temporalStart(workflowId: string, input: unknown) {
    return run(inject('temporalCli'), [
      'workflow', 'start', '--address', stack.address, '--namespace', 'default', '--task-queue', taskQueue,
      '--type', PIPELINE_WORKFLOW_TYPE, '--workflow-id', workflowId, '--input', JSON.stringify(input),
    ]);
  }

  it('runs a pipeline started by `temporal workflow start` with JSON input', async () => {
    await temporalStart('pdm-plain-env', { requestedBy: 'chatops-bot', environments: ['plain-env'], packageVersion: '17.0.1' });
    const result = await stack.client.workflow.getHandle('pdm-plain-env').result();
    expect(result).toMatchObject({ stage: 'complete', requestedBy: 'chatops-bot', packageVersion: '17.0.1' });
    expect(await query(project.urls['plain-env'], 'SELECT version FROM schema_migrations')).toEqual([{ version: '20240601000001' }]);
  });

  it('fails a start whose JSON input lacks requestedBy, saying so', async () => {
    await temporalStart('pdm-plain-bad-input', { environments: 'plain-env' });
    const failure = await stack.client.workflow.getHandle('pdm-plain-bad-input').result().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause?.message).toBe('"requestedBy" is required; "environments" must be a list of environment names');
  });

  it('replays every history it produced without nondeterminism', async () => {
    expect(await replayWorkflows(stack, ['pdm-plain-env', 'pdm-plain-bad-input'])).toBe(2);
  });
});
