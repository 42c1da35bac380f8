import { defaultPayloadConverter } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipelineStatus, sendDecision, startPipeline } from '../../cli/pipeline-client';
import { query } from '../helpers/postgres';
import { createProject, migration, type TestProject } from '../helpers/project';
import { createStack, eventually, historyText, replayWorkflows, type Stack } from '../helpers/stack';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook';

const DATABASE_PASSWORD = 'pw-Xq7-never-in-history';

const MIGRATIONS = {
  '20240101000001_create_plan_limits.sql': migration('CREATE TABLE plan_limits (id bigint PRIMARY KEY, web_hook_calls int);'),
  '20240101000002_add_ci_runners.sql': migration('CREATE TABLE ci_runners (id bigint PRIMARY KEY);\nCREATE TABLE ci_runner_machines (id bigint PRIMARY KEY, runner_id bigint);'),
  '20240101000003_index_runner_machines.sql': migration('CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_runner_machines_runner ON ci_runner_machines (runner_id);', { transaction: false }),
};

describe('post-deploy migration pipeline', () => {
  let stack: Stack;
  let project: TestProject;
  let webhook: WebhookReceiver;

  beforeAll(async () => {
    stack = await createStack();
    webhook = await startWebhookReceiver();
    project = await createProject('happy', {
      password: DATABASE_PASSWORD,
      webhookUrl: webhook.url,
      environments: [
        { name: 'staging', qa: 'test "$DBCHANGE_ENVIRONMENT" = staging && echo "QA green on $DBCHANGE_ENVIRONMENT"' },
        { name: 'production', approvalRoles: ['release-manager'] },
      ],
      migrations: MIGRATIONS,
    });
  });
  afterAll(async () => {
    webhook?.close();
    await stack?.close();
    await project?.cleanup();
  });

  it('applies three migrations on staging, passes QA, waits for approval, then applies them on production', async () => {
    const taskQueue = stack.newTaskQueue();
    await stack.startWorker(project.config, taskQueue);
    const handle = await startPipeline(stack.client, project.config, { requestedBy: 'dave', taskQueue, packageVersion: '16.1.0' });
    expect(handle.workflowId).toBe('pdm-staging+production');

    const waiting = await eventually(async () => {
      const snapshot = await pipelineStatus(stack.client, handle.workflowId);
      return snapshot.stage === 'waiting-approval' && snapshot;
    }, 'the production approval gate');
    expect(waiting.waitingFor).toContain('release-manager');
    // The UI shows current details from the SDK's built-in metadata query.
    const metadata = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    expect(metadata.currentDetails).toContain('**waiting for approval by release-manager before production**');
    expect(waiting.results[0].migrations.map((m) => m.outcome)).toEqual(['applied', 'applied', 'applied']);
    expect(waiting.results[0].qa?.passed).toBe(true);
    expect(waiting.results[0].qa?.outputTail).toContain('QA green on staging');
    // Production is untouched until someone approves.
    expect(await query(project.urls.production, `SELECT to_regclass('schema_migrations') AS t`)).toEqual([{ t: null }]);

    const answer = await sendDecision(stack.client, handle.workflowId, 'approve', { user: 'alice', role: 'release-manager' });
    expect(answer.accepted).toBe(true);
    const result = await handle.result();
    expect(result.stage).toBe('complete');

    for (const environment of ['staging', 'production']) {
      const applied = await query<{ version: string }>(project.urls[environment], 'SELECT version FROM schema_migrations ORDER BY version');
      const ledger = await query<{ version: string; outcome: string }>(project.urls[environment], `SELECT version, outcome FROM dbchange_migration_log ORDER BY version`);
      expect(applied.map((row) => row.version)).toEqual(Object.keys(MIGRATIONS).map((name) => name.slice(0, 14)));
      expect(ledger).toEqual(applied.map((row) => ({ version: row.version, outcome: 'applied' })));
    }
    const description = await handle.describe();
    expect(await description.staticSummary()).toBe('post-deploy migrations for 16.1.0: staging → production');
    expect(await description.staticDetails()).toContain('**approvals** production: release-manager');
    const attributes = Object.fromEntries(description.typedSearchAttributes.getAll().map((pair) => [pair.key.name, pair.value]));
    expect(attributes).toMatchObject({ DbChangeKind: 'pdm', DbChangeStatus: 'complete', DbChangePackage: '16.1.0', DbChangeEnvironment: 'production' });
    const history = await handle.fetchHistory();
    const activitySummaries = (history.events ?? [])
      .filter((event) => event.activityTaskScheduledEventAttributes?.activityType?.name === 'applyMigrations')
      .map((event) => defaultPayloadConverter.fromPayload<string>(event.userMetadata!.summary!));
    // One batch per environment is offered every pending file, and its summary names them (a batch may end early
    // at its time budget, and the next names the rest).
    const [first, , last] = Object.keys(MIGRATIONS);
    for (const environment of ['staging', 'production']) {
      expect(activitySummaries.find((summary) => summary.includes(`on ${environment}`))).toBe(`apply ${first} … ${last} on ${environment} (3)`);
    }

    const { notifications } = webhook;
    expect(notifications.map((notification) => notification.dbchange.event)).toEqual(['started', 'environment-done', 'environment-done', 'finished']);
    expect(notifications[3].text).toBe('post-deploy migrations for 16.1.0 complete: staging, production');
    const sent = JSON.stringify(notifications);
    for (const url of Object.values(project.urls)) expect(sent).not.toContain(url);
    const indexes = await query(project.urls.production, `SELECT indexname FROM pg_indexes WHERE indexname = 'idx_runner_machines_runner'`);
    expect(indexes).toHaveLength(1);
  });

  it('keeps database URLs and passwords out of workflow history', async () => {
    const history = await historyText(stack, 'pdm-staging+production');
    expect(history).toContain('"requestedBy":"dave"'); // payloads are decoded, so a leak would show
    expect(history).not.toContain(DATABASE_PASSWORD);
    for (const url of Object.values(project.urls)) expect(history).not.toContain(new URL(url).host + new URL(url).pathname);
  });

  it('replays the pipeline history it produced without nondeterminism', async () => {
    expect(await replayWorkflows(stack, ['pdm-staging+production'])).toBeGreaterThanOrEqual(1);
  });
});
