import { WorkflowFailedError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { pipelineStatus, sendDecision } from '../../cli/pipeline-client';
import { CliError, EXIT } from '../../cli/output';
import { approve } from '../../workflows/messages';
import { query } from '../helpers/postgres';
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

  it('refuses and records an unknown approver, a role not held, a role the gate does not take, self-approval and a malformed signal; a valid approval proceeds', async () => {
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
    // An update with a malformed payload is refused by its validator, before it reaches the workflow.
    const malformed = await sendDecision(suite.stack.client, handle.workflowId, 'approve', { user: 42, role: 'release-manager' } as never).catch((error: unknown) => error);
    expect(malformed).toBeInstanceOf(CliError);
    expect((malformed as CliError).exitCode).toBe(EXIT.refused);
    expect((malformed as CliError).message).toContain('"user" must be a string');

    const held = await eventually(async () => {
      const snapshot = await pipelineStatus(suite.stack.client, handle.workflowId);
      return snapshot.decisions.length === 5 && snapshot;
    }, 'five refusals on record');
    expect(held.stage).toBe('waiting-approval');
    expect(held.decisions.map((decision) => [decision.user, decision.accepted])).toEqual([
      ['zed', false],
      ['bob', false],
      ['bob', false],
      ['carol', false],
      ['alice', false],
    ]);
    expect(held.decisions[4].reason).toBe('"role" is required');
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
