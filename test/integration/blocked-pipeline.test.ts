import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { pipelineStatus, sendDecision } from '../../cli/pipeline-client';
import type { PipelineStatus } from '../../core/pipeline';
import { query } from '../helpers/postgres';
import { migration, type ProjectSpec } from '../helpers/project';
import { eventually, replayWorkflows } from '../helpers/stack';
import { useSuite } from '../helpers/suite';

// Seed 000: a foreign key added before the referenced table was backfilled.
const APP_SCHEMA = `
  CREATE TABLE ci_runners (id bigint PRIMARY KEY);
  CREATE TABLE ci_runner_machines (id bigint PRIMARY KEY, runner_id bigint NOT NULL);
  INSERT INTO ci_runners VALUES (1), (2);
  INSERT INTO ci_runner_machines VALUES (10, 1), (11, 2);`;
const ORPHANS = 'INSERT INTO ci_runner_machines VALUES (12, 3), (13, 4);';
const ADD_FK = '20240301000001_add_fk_runner_machines_runners.sql';
const AFTER_FK = '20240301000002_add_machine_index.sql';
const MIGRATIONS = {
  [ADD_FK]: migration('-- the referenced runners must exist first\nALTER TABLE ci_runner_machines\n  ADD CONSTRAINT fk_runner_machines_runner FOREIGN KEY (runner_id) REFERENCES ci_runners (id);'),
  [AFTER_FK]: migration('CREATE INDEX idx_machines_runner ON ci_runner_machines (runner_id);'),
};

describe('a migration that fails for a reason retrying cannot fix', () => {
  const suite = useSuite();

  async function startBlocked(prefix: string, spec: Omit<ProjectSpec, 'migrations'>, migrations: Record<string, string> = MIGRATIONS) {
    const project = await suite.project(prefix, { ...spec, migrations });
    const [first] = spec.environments;
    for (const environment of spec.environments) await query(project.urls[environment.name], APP_SCHEMA);
    await query(project.urls[first.name], ORPHANS);
    const handle = await suite.startPipeline(project);
    const blocked = await suite.waitForStage(handle.workflowId, 'blocked');
    return { project, handle, blocked };
  }

  it('blocks staging with the SQLSTATE and file line, leaves production untouched, and continues after the data is fixed and retried', async () => {
    const { project, handle, blocked } = await startBlocked('fkretry', {
      environments: [{ name: 'fk-staging' }, { name: 'fk-production', approvalRoles: ['release-manager'] }],
    });
    expect(blocked.environment).toBe('fk-staging');
    expect(blocked.migration?.version).toBe('20240301000001');
    expect(blocked.lastError).toContain(`${ADD_FK}:3: ERROR 23503`);
    expect(blocked.lastError).toContain('fk_runner_machines_runner');
    expect(blocked.waitingFor).toContain(`dbchange resolve ${handle.workflowId}`);
    expect(await query(project.urls['fk-production'], `SELECT to_regclass('schema_migrations') AS t`)).toEqual([{ t: null }]);
    const failures = await query(project.urls['fk-staging'], `SELECT outcome FROM dbchange_migration_log WHERE version = '20240301000001'`);
    expect(failures).toEqual([{ outcome: 'failed' }]);

    // A retry before the data is fixed fails the same way and blocks again.
    await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'alice', action: 'retry', comment: 'try once more' });
    await eventually(async () => {
      const snapshot = await pipelineStatus(suite.stack.client, handle.workflowId);
      return snapshot.stage === 'blocked' && snapshot.decisions.length === 1;
    }, 'the second block');

    await query(project.urls['fk-staging'], 'INSERT INTO ci_runners VALUES (3), (4)');
    const answer = await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'alice', action: 'retry', comment: 'runners backfilled' });
    expect(answer).toEqual({ accepted: true, reason: 'resolved: retry' });
    await suite.waitForStage(handle.workflowId, 'waiting-approval');
    await sendDecision(suite.stack.client, handle.workflowId, 'approve', { user: 'carol', role: 'release-manager' });
    const result = await handle.result();
    expect(result.stage).toBe('complete');
    expect(result.results.map((environment) => environment.migrations.map((m) => m.outcome))).toEqual([
      ['applied', 'applied'],
      ['applied', 'applied'],
    ]);
    expect(result.decisions.filter((decision) => decision.kind === 'resolve').map((decision) => [decision.user, decision.action, decision.accepted])).toEqual([
      ['alice', 'retry', true],
      ['alice', 'retry', true],
    ]);
    for (const url of Object.values(project.urls)) {
      expect(await query(url, `SELECT conname FROM pg_constraint WHERE conname = 'fk_runner_machines_runner'`)).toHaveLength(1);
    }
  });

  it('mark-complete records the failed migration as applied without running it, and the pipeline goes on', async () => {
    const { project, handle } = await startBlocked('fkmark', { environments: [{ name: 'mark-env' }] });
    const url = project.urls['mark-env'];
    await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'bob', action: 'mark-complete', comment: 'done by hand in CR-7' });
    const result = await handle.result();
    expect(result.stage).toBe('complete');
    expect(result.results[0].migrations.map((m) => [m.version, m.outcome])).toEqual([
      ['20240301000001', 'marked-complete'],
      ['20240301000002', 'applied'],
    ]);
    expect(await query(url, `SELECT conname FROM pg_constraint WHERE conname = 'fk_runner_machines_runner'`)).toHaveLength(0);
    expect(await query(url, 'SELECT version FROM schema_migrations ORDER BY version')).toEqual([{ version: '20240301000001' }, { version: '20240301000002' }]);
    expect(await query(url, `SELECT outcome, decided_by FROM dbchange_migration_log WHERE version = '20240301000001' ORDER BY id`)).toEqual([
      { outcome: 'failed', decided_by: null },
      { outcome: 'marked-complete', decided_by: 'bob' },
    ]);
  });

  it('abort ends the pipeline failed and applies nothing more', async () => {
    const { project, handle } = await startBlocked('fkabort', { environments: [{ name: 'abort-staging' }, { name: 'abort-production' }] });
    await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'alice', action: 'abort', comment: 'needs a fix in the app' });
    const failure = await handle.result().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause?.message).toMatch(/^aborted by alice: /);
    const snapshot: PipelineStatus = await pipelineStatus(suite.stack.client, handle.workflowId);
    expect(snapshot.stage).toBe('aborted');
    expect(await query(project.urls['abort-staging'], 'SELECT version FROM schema_migrations')).toEqual([]);
    expect(await query(project.urls['abort-production'], `SELECT to_regclass('schema_migrations') AS t`)).toEqual([{ t: null }]);
  });

  it('blocks on a failing QA gate with its output, and runs QA again on retry', async () => {
    const project = await suite.project('qafail', {
      environments: [
        { name: 'qa-staging', qa: 'if [ -f qa-fixed ]; then echo "QA green"; else echo "plan_limits page returns 500"; exit 3; fi' },
        { name: 'qa-production' },
      ],
      migrations: { '20240301000003_create_plan_limits.sql': migration('CREATE TABLE plan_limits (id bigint PRIMARY KEY);') },
    });
    const handle = await suite.startPipeline(project);
    const blocked = await suite.waitForStage(handle.workflowId, 'blocked');
    expect(blocked.lastError).toBe('QA on qa-staging exited 3: plan_limits page returns 500');
    expect(blocked.results[0].qa).toMatchObject({ passed: false, exitCode: 3, timedOut: false });
    expect(await query(project.urls['qa-production'], `SELECT to_regclass('schema_migrations') AS t`)).toEqual([{ t: null }]);

    writeFileSync(join(project.dir, 'qa-fixed'), '');
    await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'alice', action: 'retry' });
    const result = await handle.result();
    expect(result.stage).toBe('complete');
    expect(result.results[0].qa).toMatchObject({ passed: true, exitCode: 0, outputTail: 'QA green\n' });
    expect(await query(project.urls['qa-production'], 'SELECT version FROM schema_migrations')).toEqual([{ version: '20240301000003' }]);
  });

  it('replays every history it produced without nondeterminism', async () => {
    expect(await replayWorkflows(suite.stack, suite.workflowIds)).toBe(suite.workflowIds.length);
  });
});
