import { WorkflowFailedError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { sendDecision } from '../../cli/pipeline-client';
import { query } from '../helpers/postgres';
import { migration } from '../helpers/project';
import { replayWorkflows } from '../helpers/stack';
import { useSuite } from '../helpers/suite';

// Seed 002: the regular migration ran everywhere; the post-deploy cleanup renames the column the running version selects.
const REGULAR_SCHEMA = `
  CREATE TABLE plan_limits (id bigint PRIMARY KEY, plan_id bigint NOT NULL, ci_registered_project_runners int NOT NULL DEFAULT 1000, web_hook_calls int NOT NULL DEFAULT 0);
  INSERT INTO plan_limits VALUES (1, 1, 1000, 500);`;
const APP_QUERIES = `-- Plan#actual_limits
SELECT "plan_limits"."id", "plan_limits"."ci_registered_project_runners", "plan_limits"."web_hook_calls" FROM "plan_limits" WHERE "plan_limits"."plan_id" = $1 LIMIT 1;

-- Admin: plans over their runner limit
SELECT plan_id FROM plan_limits WHERE ci_registered_project_runners > 500;

-- A write the application makes; EXPLAIN plans it without running it
UPDATE plan_limits SET web_hook_calls = web_hook_calls + 1 WHERE plan_id = 1;
`;
const CLEANUP_RENAME = '20230109100044_cleanup_web_hook_calls_column_rename.sql';

describe('the compatibility gate', () => {
  const suite = useSuite();

  it('replays seed 002: the rename fails the gate on staging with the query and the error, and production is untouched', async () => {
    const project = await suite.project('seed002', {
      environments: [{ name: 'compat-staging' }, { name: 'compat-production', approvalRoles: ['release-manager'] }],
      migrations: { [CLEANUP_RENAME]: migration('ALTER TABLE plan_limits RENAME COLUMN web_hook_calls TO web_hook_calls_high;') },
      appQueries: APP_QUERIES,
    });
    for (const url of Object.values(project.urls)) await query(url, REGULAR_SCHEMA);
    const handle = await suite.startPipeline(project);
    const blocked = await suite.waitForStage(handle.workflowId, 'blocked');

    expect(blocked.environment).toBe('compat-staging');
    expect(blocked.lastError).toContain('compatibility gate on compat-staging: 2 of 3 application queries no longer plan');
    expect(blocked.lastError).toContain('app-queries.sql:2: SELECT "plan_limits"."id"');
    expect(blocked.lastError).toContain('ERROR 42703 column plan_limits.web_hook_calls does not exist');
    expect(blocked.lastError).toContain('app-queries.sql:8: UPDATE plan_limits');
    expect(blocked.results[0].compatibility).toMatchObject({ environment: 'compat-staging', checked: 3 });
    expect(blocked.results[0].compatibility?.failures.map((failure) => [failure.source, failure.sqlstate])).toEqual([
      ['app-queries.sql:2', '42703'],
      ['app-queries.sql:8', '42703'],
    ]);
    // The migration ran on staging, and EXPLAIN ran nothing: the UPDATE did not count a web hook call.
    expect(await query(project.urls['compat-staging'], 'SELECT version FROM schema_migrations')).toEqual([{ version: '20230109100044' }]);
    expect(await query(project.urls['compat-staging'], 'SELECT web_hook_calls_high FROM plan_limits')).toEqual([{ web_hook_calls_high: 500 }]);

    await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'alice', action: 'abort', comment: 'restore the column on staging (seed 002, attempt 3)' });
    expect(await handle.result().catch((error: unknown) => error)).toBeInstanceOf(WorkflowFailedError);
    const production = project.urls['compat-production'];
    expect(await query(production, `SELECT to_regclass('schema_migrations') AS t`)).toEqual([{ t: null }]);
    expect(await query(production, `SELECT column_name FROM information_schema.columns WHERE table_name = 'plan_limits' AND column_name LIKE 'web_hook%'`)).toEqual([
      { column_name: 'web_hook_calls' },
    ]);
  });

  it('lets a migration the running queries survive through every environment', async () => {
    const project = await suite.project('compatok', {
      environments: [{ name: 'compatok-staging' }, { name: 'compatok-production' }],
      migrations: {
        '20230109100045_index_plan_limits_on_runners.sql': migration('CREATE INDEX IF NOT EXISTS index_plan_limits_on_runners ON plan_limits (ci_registered_project_runners);'),
      },
      appQueries: APP_QUERIES,
    });
    for (const url of Object.values(project.urls)) await query(url, REGULAR_SCHEMA);
    const handle = await suite.startPipeline(project);
    const result = await handle.result();
    expect(result.stage).toBe('complete');
    expect(result.results.map((environment) => [environment.compatibility?.checked, environment.compatibility?.failures])).toEqual([
      [3, []],
      [3, []],
    ]);
  });

  it('replays every history it produced without nondeterminism', async () => {
    expect(await replayWorkflows(suite.stack, suite.workflowIds)).toBe(suite.workflowIds.length);
  });
});
