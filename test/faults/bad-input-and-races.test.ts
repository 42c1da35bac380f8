import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { defineSignal, defineUpdate } from '@temporalio/workflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliError, EXIT } from '../../cli/output';
import { pipelineStatus, sendDecision, startPipeline } from '../../cli/pipeline-client';
import { approve, reject, resolve } from '../../workflows/messages';
import { assertBuilt, runCli, stopWorkerProcesses, type CliTarget, type WorkerProcess } from '../helpers/processes';
import { ADMIN_URL, query } from '../helpers/postgres';
import { migration, type TestProject } from '../helpers/project';
import { eventually, historyText, replayWorkflows } from '../helpers/stack';
import { useSuite } from '../helpers/suite';
import { expectNoSecretsInHistories, sleep, startPrebundledWorker, startWebhook, writeBundle } from './fault-helpers';

const PASSWORD = 'badin-db-password-c81e7a40';
const WEBHOOK_TOKEN = 'badin-webhook-token-93d2f1';
/** The racing CLIs connect with an API key (sent in plain text: the dev server has no TLS and ignores the key). */
const API_KEY = 'badin-temporal-api-key-5d72ce91';
const ONE_MB = 'x'.repeat(1024 * 1024);
const MIGRATIONS = { '20240501100001_create_badin_items.sql': migration('CREATE TABLE badin_items (id bigint PRIMARY KEY);') };

describe('faults from outside: bad messages and inputs, racing starts, a lost database connection', () => {
  const suite = useSuite();
  let webhook: Awaited<ReturnType<typeof startWebhook>>;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    assertBuilt();
    webhook = await startWebhook();
  });
  afterAll(async () => {
    await stopWorkerProcesses(workers, 5_000);
    await webhook?.close();
  });

  async function gatedProject(prefix: string): Promise<TestProject> {
    return suite.project(prefix, {
      environments: [{ name: `${prefix}-staging` }, { name: `${prefix}-production`, approvalRoles: ['release-manager'] }],
      migrations: MIGRATIONS,
      password: PASSWORD,
      webhookUrl: webhook.url(WEBHOOK_TOKEN),
    });
  }

  it('refuses malformed updates with a clear reason, records those small enough to record, and leaves the waiting pipeline otherwise as it was', async () => {
    const project = await gatedProject('badup');
    const handle = await suite.startPipeline(project, 'carol');
    await suite.waitForStage(handle.workflowId, 'waiting-approval');
    const before = await pipelineStatus(suite.stack.client, handle.workflowId);
    const tooLarge = /^the payload is 1025 KB as JSON; a decision may be at most 8 KB/;

    // Answered by the workflow and recorded, like the same payloads sent as signals.
    const recorded: { kind: 'approve' | 'reject' | 'resolve'; payload: unknown; user: string; reason: string }[] = [
      { kind: 'approve', payload: { user: 42, role: 'release-manager' }, user: '(missing)', reason: '"user" must be a string' },
      { kind: 'approve', payload: { role: 'release-manager' }, user: '(missing)', reason: '"user" is required' },
      { kind: 'approve', payload: { user: 'alice', role: ['release-manager'] }, user: 'alice', reason: '"role" must be a string' },
      { kind: 'reject', payload: { user: 'alice' }, user: 'alice', reason: '"reason" is required' },
      { kind: 'resolve', payload: { user: 'alice', action: 'explode' }, user: 'alice', reason: '"action" must be one of retry, mark-complete, rollback, abort, skip-batch; got "explode"' },
      { kind: 'resolve', payload: { action: 'retry' }, user: '(missing)', reason: '"user" is required' },
    ];
    for (const attempt of recorded) {
      const answer = await sendDecision(suite.stack.client, handle.workflowId, attempt.kind as 'approve', attempt.payload as never);
      expect(answer, JSON.stringify(attempt.payload)).toEqual({ accepted: false, reason: attempt.reason });
    }
    // Refused by the validator before they enter history: not a JSON object, or 1 MB strings that would flood it.
    const unrecorded: { kind: 'approve' | 'reject' | 'resolve'; payload: unknown; error: string | RegExp }[] = [
      { kind: 'approve', payload: { user: ONE_MB, role: 'release-manager' }, error: tooLarge },
      { kind: 'approve', payload: { user: 'alice', role: 'release-manager', comment: ONE_MB }, error: tooLarge },
      { kind: 'approve', payload: 'alice', error: 'expected a JSON object with user, role, comment, checksum' },
      { kind: 'approve', payload: null, error: 'expected a JSON object with user, role, comment, checksum' },
      { kind: 'reject', payload: { user: 'alice', reason: ONE_MB }, error: tooLarge },
    ];
    for (const attempt of unrecorded) {
      const refusal = await sendDecision(suite.stack.client, handle.workflowId, attempt.kind as 'approve', attempt.payload as never).catch((error: unknown) => error);
      expect(refusal, JSON.stringify(attempt.payload)?.slice(0, 80)).toBeInstanceOf(CliError);
      expect((refusal as CliError).exitCode).toBe(EXIT.refused);
      const prefix = `${attempt.kind} refused by ${handle.workflowId}: `;
      expect((refusal as CliError).message.startsWith(prefix)).toBe(true);
      expect((refusal as CliError).message.slice(prefix.length)).toMatch(attempt.error);
    }
    // An update the workflow does not know is refused by the SDK, not queued.
    const unknownUpdate = await suite.stack.client.workflow
      .getHandle(handle.workflowId)
      .executeUpdate(defineUpdate<unknown, [unknown]>('launch'), { args: [{ user: 'alice' }] })
      .catch((error: unknown) => error);
    expect(unknownUpdate).toBeInstanceOf(WorkflowUpdateFailedError);
    expect(String((unknownUpdate as WorkflowUpdateFailedError).cause?.message)).toContain('launch');

    // The refusals are on record and nothing else changed; the 1 MB strings are in neither the status nor history.
    const after = await pipelineStatus(suite.stack.client, handle.workflowId);
    expect({ ...after, decisions: [] }).toEqual({ ...before, decisions: [] });
    expect(after.decisions.map((decision) => [decision.kind, decision.user, decision.accepted, decision.reason])).toEqual(
      recorded.map((attempt) => [attempt.kind, attempt.user, false, attempt.reason]),
    );
    expect(JSON.stringify(after).length).toBeLessThan(10_000);
    expect((await historyText(suite.stack, handle.workflowId)).length).toBeLessThan(100_000);
    expect(await query(project.urls['badup-production'], `SELECT to_regclass('schema_migrations') AS t`)).toEqual([{ t: null }]);

    const accepted = await sendDecision(suite.stack.client, handle.workflowId, 'approve', { user: 'alice', role: 'release-manager' });
    expect(accepted).toEqual({ accepted: true, reason: 'approved badup-production as release-manager' });
    expect((await handle.result()).stage).toBe('complete');
  });

  it('records malformed signals as refusals and changes nothing else; unknown signals are ignored', async () => {
    const project = await gatedProject('badsig');
    const handle = await suite.startPipeline(project, 'carol');
    await suite.waitForStage(handle.workflowId, 'waiting-approval');
    const before = await pipelineStatus(suite.stack.client, handle.workflowId);
    const workflow = suite.stack.client.workflow.getHandle(handle.workflowId);

    await workflow.signal(approve, { user: 7, role: 'release-manager' } as never);
    await workflow.signal(approve, { role: 'release-manager' } as never);
    await workflow.signal(approve, { user: ONE_MB, role: 'release-manager' });
    await workflow.signal(reject, { user: 'alice', reason: ONE_MB });
    await workflow.signal(resolve, { user: 'alice', action: 'explode' } as never);
    await workflow.signal(approve, 'alice' as never);
    await workflow.signal(defineSignal<[unknown]>('launch'), { user: 'alice' });

    const after = await eventually(async () => {
      const snapshot = await pipelineStatus(suite.stack.client, handle.workflowId);
      return snapshot.decisions.length === 6 && snapshot;
    }, 'six refusals on record');
    expect({ ...after, decisions: [] }).toEqual({ ...before, decisions: [] });
    expect(before.decisions).toEqual([]);
    expect(after.decisions.map((decision) => [decision.kind, decision.user, decision.accepted, decision.reason])).toEqual([
      ['approve', '(missing)', false, '"user" must be a string'],
      ['approve', '(missing)', false, '"user" is required'],
      ['approve', 'x'.repeat(100), false, '"user" is longer than 2000 characters'],
      ['reject', 'alice', false, '"reason" is longer than 2000 characters'],
      ['resolve', 'alice', false, '"action" must be one of retry, mark-complete, rollback, abort, skip-batch; got "explode"'],
      ['approve', '(missing)', false, 'expected a JSON object with user, role, comment, checksum'],
    ]);
    // The 1 MB strings are refused, never copied into the status that every query and the UI return.
    expect(JSON.stringify(after).length).toBeLessThan(10_000);

    await workflow.signal(approve, { user: 'alice', role: 'release-manager' });
    expect((await handle.result()).stage).toBe('complete');
  });

  it('answers unknown workflow ids, unknown actions and an invalid config with one clear line, touching nothing', async () => {
    const project = await gatedProject('badcli');
    const handle = await suite.startPipeline(project, 'carol');
    await suite.waitForStage(handle.workflowId, 'waiting-approval');
    const before = await pipelineStatus(suite.stack.client, handle.workflowId);
    const target: CliTarget = { address: suite.stack.address, taskQueue: suite.stack.newTaskQueue(), configPath: project.configPath };

    const unknownId = await runCli(target, ['approve', 'pdm-no-such-pipeline', '--as', 'alice', '--role', 'release-manager']);
    expect(unknownId).toMatchObject({ code: EXIT.failure, stdout: '' });
    expect(unknownId.stderr).toBe('dbchange: no workflow pdm-no-such-pipeline; list pipelines with `dbchange pdm status`\n');
    const unknownStatus = await runCli(target, ['pdm', 'status', 'pdm-no-such-pipeline']);
    expect(unknownStatus.code).toBe(EXIT.failure);
    expect(unknownStatus.stderr).toBe('dbchange: no workflow pdm-no-such-pipeline; list pipelines with `dbchange pdm status`\n');

    const unknownAction = await runCli(target, ['resolve', handle.workflowId, '--as', 'alice', '--action', 'explode']);
    expect(unknownAction.code).toBe(EXIT.refused);
    expect(unknownAction.stderr).toBe('dbchange: --action must be one of retry, mark-complete, rollback, abort, skip-batch; got "explode"\n');

    const badConfig = join(project.dir, 'broken.yaml');
    writeFileSync(
      badConfig,
      ['migrations:', '  postDeploy: db/post_migrate', 'environments:', '  - name: Staging', '    databseUrl: postgres://x', 'lockRetry: { lockTimeout: soon }', ''].join('\n'),
    );
    const invalid = await runCli({ ...target, configPath: badConfig }, ['pdm', 'execute', '--as', 'erin']);
    expect(invalid.code).toBe(EXIT.refused);
    expect(invalid.stdout).toBe('');
    const line = invalid.stderr.trim();
    expect(line.split('\n')).toHaveLength(1);
    expect(line).toContain(`invalid config ${badConfig}`);
    expect(line).toContain('line 4: environments.0.name: use lowercase letters');
    expect(line).toContain('line 5: environments.0.databseUrl: unknown key (check its spelling)');
    expect(line).toContain('line 6: lockRetry.lockTimeout: expected a duration such as 200ms');

    expect(await pipelineStatus(suite.stack.client, handle.workflowId)).toEqual(before);
    const rejected = await runCli(target, ['reject', handle.workflowId, '--as', 'carol', '--reason', 'withdrawn after the bad-input checks']);
    expect(rejected).toMatchObject({ code: 0, stdout: 'accepted: rejected badcli-production\n' });
  });

  it('lets exactly one of ten simultaneous `pdm execute` run and refuses the other nine naming its id', { timeout: 120_000 }, async () => {
    const project = await gatedProject('race');
    const target: CliTarget = { address: suite.stack.address, taskQueue: suite.stack.newTaskQueue(), configPath: project.configPath };
    await suite.stack.startWorker(project.config, target.taskQueue);
    const workflowId = 'pdm-race-staging+race-production';
    suite.workflowIds.push(workflowId);

    const users = Array.from({ length: 10 }, (_, index) => `requester-${index + 1}`);
    // The key reaches the connection: on its own it implies TLS, which the plain dev server does not speak.
    const tlsImplied = await runCli(target, ['pdm', 'status'], { env: { TEMPORAL_API_KEY: API_KEY } });
    expect(tlsImplied.code).toBe(1);
    expect(tlsImplied.stderr).toContain(`cannot reach Temporal at ${target.address}`);
    const withApiKey = { TEMPORAL_API_KEY: API_KEY, TEMPORAL_TLS: 'false' };
    const runs = await Promise.all(users.map((user) => runCli(target, ['pdm', 'execute', '--as', user], { timeoutMs: 90_000, env: withApiKey })));
    const started = runs.flatMap((run, index) => (run.code === 0 ? [users[index]] : []));
    const refused = runs.filter((run) => run.code === EXIT.refused);
    expect(started).toHaveLength(1);
    expect(refused).toHaveLength(9);
    for (const run of refused) expect(run.stderr).toBe(`dbchange: pipeline ${workflowId} is already running; follow it with \`dbchange pdm status ${workflowId}\`\n`);

    const executions = [];
    for await (const execution of suite.stack.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) executions.push(execution);
    expect(executions).toHaveLength(1);
    const waiting = await suite.waitForStage(workflowId, 'waiting-approval');
    expect(waiting.requestedBy).toBe(started[0]);
    expect(await query(project.urls['race-staging'], 'SELECT version FROM schema_migrations')).toEqual([{ version: '20240501100001' }]);
    await sendDecision(suite.stack.client, workflowId, 'reject', { user: started[0], reason: 'race test done' });
  });

  it('retries a migration whose connection is terminated mid-statement and applies it once', async () => {
    const project = await suite.project('lostconn', {
      environments: [{ name: 'lostconn-env' }],
      password: PASSWORD,
      webhookUrl: webhook.url(WEBHOOK_TOKEN),
      migrations: {
        '20240501200001_slow_lostconn.sql': migration("INSERT INTO lostconn_side_effects (note) VALUES ('ran');\nSELECT pg_sleep(3);\nCREATE TABLE lostconn_items (id int);"),
      },
    });
    const url = project.urls['lostconn-env'];
    await query(url, 'CREATE TABLE lostconn_side_effects (id serial PRIMARY KEY, note text NOT NULL)');
    // A worker process of its own: an error nobody listens for would end it, as it would in production.
    const target: CliTarget = { address: suite.stack.address, taskQueue: suite.stack.newTaskQueue(), configPath: project.configPath };
    const worker = await startPrebundledWorker(target, writeBundle(suite.stack));
    workers.push(worker);
    const handle = await startPipeline(suite.stack.client, project.config, { requestedBy: 'dave', taskQueue: target.taskQueue });
    suite.workflowIds.push(handle.workflowId);

    const database = new URL(url).pathname.slice(1);
    const applier = await eventually(async () => {
      const rows = await query<{ pid: number }>(
        ADMIN_URL,
        `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'dbchange' AND state = 'active' AND query LIKE '%pg_sleep(3)%'`,
        [database],
      );
      return rows.length === 1 && rows[0];
    }, "the applier's statement to be running");
    expect(await query(ADMIN_URL, 'SELECT pg_terminate_backend($1) AS terminated', [applier.pid])).toEqual([{ terminated: true }]);

    const crashed = worker.exited.then((how) => {
      throw new Error(`the worker died (${how}) after losing its connection: ${worker.output().slice(-2_000)}`);
    });
    const result = await Promise.race([handle.result(), crashed]);
    expect(result.stage).toBe('complete');
    expect(result.results[0].migrations.map((outcome) => [outcome.outcome, outcome.attempts])).toEqual([['applied', 2]]);
    // Retried by the same worker, which survived the lost connection.
    expect(await Promise.race([worker.exited, sleep(200).then(() => 'running')])).toBe('running');
    expect(await query(url, 'SELECT version FROM schema_migrations')).toEqual([{ version: '20240501200001' }]);
    expect(await query(url, 'SELECT outcome, attempts FROM dbchange_migration_log')).toEqual([{ outcome: 'applied', attempts: 2 }]);
    expect(await query(url, 'SELECT note FROM lostconn_side_effects')).toEqual([{ note: 'ran' }]);
  });

  it('keeps the database password, the webhook token and the API key out of every history it produced', async () => {
    expect(await expectNoSecretsInHistories(suite.stack, suite.workflowIds, [PASSWORD, WEBHOOK_TOKEN, API_KEY])).toBe(suite.workflowIds.length);
  });

  it('replays every history it produced without nondeterminism', async () => {
    expect(await replayWorkflows(suite.stack, suite.workflowIds)).toBe(suite.workflowIds.length);
  });
});
