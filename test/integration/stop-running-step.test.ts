// A person can stop a step while it runs: `resolve --action abort` cancels its SQL on the server, the transaction
// rolls back, the ledger says aborted, and the pipeline or change ends with who and why. A change request waiting
// on a lock says whom it waits for, as a pipeline does.
import { WorkflowFailedError } from '@temporalio/client';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { changeRequestStatus, startChangeRequest } from '../../cli/change-client';
import { pipelineStatus, sendDecision } from '../../cli/pipeline-client';
import { readChangeRequestFile } from '../../core/change-request-file';
import { writeChangeRequest } from '../helpers/change-requests';
import { query } from '../helpers/postgres';
import { migration, type TestProject } from '../helpers/project';
import { eventually, replayWorkflows } from '../helpers/stack';
import { useSuite } from '../helpers/suite';

const LONG = '20240902000001_create_then_run_long.sql';
const SLEEPING = `SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(120)%'`;

describe('stopping a running step', () => {
  const suite = useSuite();

  async function startChange(project: TestProject, id: string, environment: string, steps: string) {
    const taskQueue = suite.stack.newTaskQueue();
    await suite.stack.startWorker(project.config, taskQueue);
    const file = writeChangeRequest(project, `${id}.yaml`, [`id: ${id}`, `title: ${id}`, 'criticality: C4', 'requestedBy: dave', `environments: [${environment}]`, `steps:${steps}`].join('\n'));
    const handle = await startChangeRequest(suite.stack.client, project.config, await readChangeRequestFile(file), { taskQueue });
    suite.workflowIds.push(handle.workflowId);
    return handle;
  }

  it('abort cancels a running migration on the server, rolls it back, records it aborted and ends the pipeline aborted', async () => {
    const project = await suite.project('stopmigration', {
      environments: [{ name: 'stop-env' }],
      statementTimeout: '5m',
      migrations: { [LONG]: migration('CREATE TABLE made_before_the_stop (id int);\nSELECT pg_sleep(120);') },
    });
    const url = project.urls['stop-env'];
    const handle = await suite.startPipeline(project);
    await eventually(async () => (await query(url, SLEEPING)).length === 1, 'the migration to be running its long statement');

    // While it runs, only abort is accepted.
    const retry = await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'alice', action: 'retry' });
    expect(retry).toEqual({ accepted: false, reason: '"action" must be one of abort; got "retry"' });

    const asked = Date.now();
    const answer = await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'alice', action: 'abort', comment: 'wrong maintenance window' });
    expect(answer).toEqual({ accepted: true, reason: 'resolved: abort' });
    const failure = await handle.result().catch((error: unknown) => error);
    const stoppedAfterMs = Date.now() - asked;
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause?.message).toBe(`aborted by alice: stopped ${LONG} while it ran; its SQL was cancelled and rolled back`);

    const snapshot = await pipelineStatus(suite.stack.client, handle.workflowId);
    expect(snapshot.stage).toBe('aborted');
    expect(snapshot.summary).toBe(`aborted by alice ("wrong maintenance window") on stop-env: stopped ${LONG} while it ran; its SQL was cancelled and rolled back`);
    expect(await query(url, SLEEPING)).toEqual([]);
    expect(await query(url, `SELECT to_regclass('made_before_the_stop') AS t`)).toEqual([{ t: null }]);
    expect(await query(url, 'SELECT version FROM schema_migrations')).toEqual([]);
    expect(await query(url, 'SELECT outcome, error FROM dbchange_migration_log')).toEqual([
      { outcome: 'aborted', error: 'stopped by a person while it ran: its SQL was cancelled and rolled back' },
    ]);
    console.info(`stop: the pipeline ended ${stoppedAfterMs} ms after resolve --action abort`);
    expect(stoppedAfterMs).toBeLessThan(10_000);
  });

  it('abort cancels a running change request step, and the change ends failed with who stopped it', async () => {
    const project = await suite.project('stopchange', { environments: [{ name: 'stopcr-env' }], statementTimeout: '5m', migrations: {} });
    const url = project.urls['stopcr-env'];
    const handle = await startChange(project, 'long-step', 'stopcr-env', `
  - id: long-update
    sql: |
      CREATE TABLE made_by_the_change (id int);
      SELECT pg_sleep(120);
`);
    await eventually(async () => (await query(url, SLEEPING)).length === 1, 'the change step to be running');
    const answer = await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'alice', action: 'abort', comment: 'takes too long' });
    expect(answer.accepted).toBe(true);
    const failure = await handle.result().catch((error: unknown) => error);
    expect((failure as WorkflowFailedError).cause?.message).toBe('aborted by alice: stopped execute step long-update while it ran; its SQL was cancelled and rolled back');
    const snapshot = await changeRequestStatus(suite.stack.client, handle.workflowId);
    expect(snapshot.stage).toBe('failed');
    expect(snapshot.summary).toContain('aborted by alice ("takes too long") on stopcr-env');
    expect(await query(url, SLEEPING)).toEqual([]);
    expect(await query(url, `SELECT to_regclass('made_by_the_change') AS t`)).toEqual([{ t: null }]);
    // Nothing recorded: even the change ledger, created in the step's own transaction, was rolled back with it.
    expect(await query(url, `SELECT to_regclass('dbchange_change_log') AS t`)).toEqual([{ t: null }]);
  });

  it('a change request step waiting on a lock names the blocking session in its status', async () => {
    const project = await suite.project('crlockwait', { environments: [{ name: 'crlock-env' }], migrations: {} });
    const url = project.urls['crlock-env'];
    await query(url, 'CREATE TABLE hot (id int PRIMARY KEY)');
    const blocker = new pg.Client({ connectionString: url });
    await blocker.connect();
    const blockerPid = (await blocker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    await blocker.query('BEGIN');
    await blocker.query('SELECT count(*) FROM hot');
    try {
      const handle = await startChange(project, 'add-column', 'crlock-env', `
  - id: add-note
    sql: ALTER TABLE hot ADD COLUMN note text;
`);
      const waiting = await eventually(async () => {
        const snapshot = await changeRequestStatus(suite.stack.client, handle.workflowId);
        return snapshot.waitingFor?.includes(`pid ${blockerPid}`) && snapshot;
      }, 'the change status to name the blocking pid');
      expect(waiting.stage).toBe('in-progress');
      expect(waiting.waitingFor).toMatch(new RegExp(`^waiting for pid ${blockerPid}, idle in transaction \\d+s: SELECT count\\(\\*\\) FROM hot \\(waited \\d+s\\)$`));
      await blocker.query('COMMIT');
      const done = await eventually(async () => {
        const snapshot = await changeRequestStatus(suite.stack.client, handle.workflowId);
        return snapshot.stage === 'complete' && snapshot;
      }, 'the change to complete once the blocker committed');
      expect(done.steps.map((step) => `${step.id}:${step.outcome}`)).toEqual(['add-note:applied']);
    } finally {
      await blocker.end();
    }
  });

  it('replays every history it produced without nondeterminism', async () => {
    expect(await replayWorkflows(suite.stack, suite.workflowIds)).toBe(suite.workflowIds.length);
  });
});
