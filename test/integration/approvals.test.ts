import { WorkflowFailedError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { pipelineStatus, sendDecision } from '../../cli/pipeline-client';
import { CliError, EXIT } from '../../cli/output';
import { approve } from '../../workflows/messages';
import { query } from '../helpers/postgres';
import { runCli, type CliTarget } from '../helpers/processes';
import { migration } from '../helpers/project';
import { eventually, replayWorkflows } from '../helpers/stack';
import { useSuite } from '../helpers/suite';

const MIGRATIONS = { '20240401000001_create_plan_limits.sql': migration('CREATE TABLE plan_limits (id bigint PRIMARY KEY);') };

describe('approval gates', () => {
  const suite = useSuite();

  async function startAtGate(prefix: string, approvalTimeout?: string) {
    const project = await suite.project(prefix, {
      environments: [{ name: `${prefix}-staging` }, { name: `${prefix}-production`, approvalRoles: ['release-manager'], approvalTimeout }],
      migrations: MIGRATIONS,
    });
    const handle = await suite.startPipeline(project, 'carol');
    await suite.waitForStage(handle.workflowId, 'waiting-approval');
    return { project, handle };
  }

  it('refuses and records an unknown approver, a role not held, a role the gate does not take, self-approval, a malformed signal and a malformed update; a valid approval proceeds', async () => {
    const { project, handle } = await startAtGate('appr');
    const refusals = [
      { user: 'zed', role: 'release-manager', reason: /zed is not a configured approver/ },
      { user: 'bob', role: 'release-manager', reason: /bob does not hold the role release-manager/ },
      { user: 'bob', role: 'manager', reason: /role manager cannot approve this gate; it needs release-manager/ },
      { user: 'carol', role: 'release-manager', reason: /carol requested this change and cannot approve it/ },
    ];
    for (const attempt of refusals) {
      const answer = await sendDecision(suite.stack.client, handle.workflowId, 'approve', { user: attempt.user, role: attempt.role });
      expect(answer.accepted).toBe(false);
      expect(answer.reason).toMatch(attempt.reason);
    }
    // Chat tooling may send a plain signal with a bad payload: it is recorded as refused, not applied.
    await suite.stack.client.workflow.getHandle(handle.workflowId).signal(approve, { user: 'alice' } as never);
    // So is an update with a malformed payload, and its caller hears why at once.
    const malformed = await sendDecision(suite.stack.client, handle.workflowId, 'approve', { user: 42, role: 'release-manager' } as never);
    expect(malformed).toEqual({ accepted: false, reason: '"user" must be a string' });

    const held = await eventually(async () => {
      const snapshot = await pipelineStatus(suite.stack.client, handle.workflowId);
      return snapshot.decisions.length === 6 && snapshot;
    }, 'six refusals on record');
    expect(held.stage).toBe('waiting-approval');
    expect(held.decisions.map((decision) => [decision.user, decision.accepted])).toEqual([
      ['zed', false],
      ['bob', false],
      ['bob', false],
      ['carol', false],
      ['alice', false],
      ['(missing)', false],
    ]);
    expect(held.decisions[4].reason).toBe('"role" is required');
    expect(held.decisions[5].reason).toBe('"user" must be a string');
    expect(await query(project.urls['appr-production'], `SELECT to_regclass('schema_migrations') AS t`)).toEqual([{ t: null }]);

    const answer = await sendDecision(suite.stack.client, handle.workflowId, 'approve', { user: 'alice', role: 'release-manager', comment: 'QA green' });
    expect(answer).toEqual({ accepted: true, reason: 'approved appr-production as release-manager' });
    const result = await handle.result();
    expect(result.stage).toBe('complete');
    const accepted = result.decisions.filter((decision) => decision.accepted);
    expect(accepted).toMatchObject([{ kind: 'approve', user: 'alice', role: 'release-manager', comment: 'QA green', environment: 'appr-production' }]);
    expect(Date.parse(accepted[0].at)).toBeGreaterThan(0);
    expect(await query(project.urls['appr-production'], 'SELECT version FROM schema_migrations')).toEqual([{ version: '20240401000001' }]);
  });

  it('from the CLI, a malformed approval is refused with exit 3 and its reason, and recorded; one too large to record is refused with exit 3 and leaves no entry', async () => {
    const { project, handle } = await startAtGate('apprcli');
    const target: CliTarget = { address: suite.stack.address, taskQueue: 'unused', configPath: project.configPath };
    const approve = (comment: string) => runCli(target, ['approve', handle.workflowId, '--as', 'alice', '--role', 'release-manager', '--comment', comment]);

    const tooLong = await approve('x'.repeat(3_000));
    expect(tooLong).toEqual({ code: EXIT.refused, stdout: 'refused: "comment" is longer than 2000 characters\n', stderr: '' });
    const tooLarge = await approve('x'.repeat(10_000));
    expect(tooLarge).toEqual({
      code: EXIT.refused,
      stdout: '',
      stderr: `dbchange: approve refused by ${handle.workflowId}: the payload is 10 KB as JSON; a decision may be at most 8 KB (each text at most 2000 characters)\n`,
    });
    // Not a JSON object: refused before history too, with what it should have been.
    const notAnObject = await sendDecision(suite.stack.client, handle.workflowId, 'approve', 'alice' as never).catch((error: unknown) => error);
    expect(notAnObject).toBeInstanceOf(CliError);
    expect((notAnObject as CliError).exitCode).toBe(EXIT.refused);
    expect((notAnObject as CliError).message).toBe(`approve refused by ${handle.workflowId}: expected a JSON object with user, role, comment, checksum`);

    const held = await pipelineStatus(suite.stack.client, handle.workflowId);
    expect(held.stage).toBe('waiting-approval');
    expect(held.decisions.map((decision) => [decision.kind, decision.user, decision.accepted, decision.reason])).toEqual([['approve', 'alice', false, '"comment" is longer than 2000 characters']]);
    const { events } = await handle.fetchHistory();
    expect(events!.filter((event) => event.workflowExecutionUpdateAcceptedEventAttributes)).toHaveLength(1);

    expect(await approve('QA green')).toEqual({ code: EXIT.ok, stdout: 'accepted: approved apprcli-production as release-manager\n', stderr: '' });
    expect((await handle.result()).stage).toBe('complete');
  });

  it('ends with a clear status when nobody approves within the timeout', async () => {
    const { project, handle } = await startAtGate('tmo', '2s');
    const failure = await handle.result().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause?.message).toBe('no approval within 2.0s');
    const snapshot = await pipelineStatus(suite.stack.client, handle.workflowId);
    expect(snapshot.stage).toBe('failed');
    expect(snapshot.summary).toBe('tmo-production not approved: no approval within 2.0s');
    expect(await query(project.urls['tmo-production'], `SELECT to_regclass('schema_migrations') AS t`)).toEqual([{ t: null }]);
  });

  it('replays every history it produced without nondeterminism', async () => {
    expect(await replayWorkflows(suite.stack, suite.workflowIds)).toBe(suite.workflowIds.length);
  });
});
