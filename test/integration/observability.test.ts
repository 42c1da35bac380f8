import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackfill } from '../../cli/backfill-client';
import { pipelineStatus, sendDecision, startPipeline } from '../../cli/pipeline-client';
import type { BackfillStatus } from '../../core/backfill-status';
import { METRIC } from '../../core/metric-names';
import type { PipelineStatus } from '../../core/pipeline';
import { assertBuilt, startWorkerProcess, stopWorkerProcesses, type CliTarget, type WorkerProcess } from '../helpers/processes';
import { query } from '../helpers/postgres';
import { createProject, migration, type TestProject } from '../helpers/project';
import { createStack, eventually, replayWorkflows, type Stack } from '../helpers/stack';
import { freePort } from '../../examples/demo/ports';
import { ARTIFACTS_DIR } from '../helpers/browser';
import { createFleetProject } from '../helpers/fleet';
import { startWebhookReceiver } from '../helpers/webhook';

const WORKFLOW_ID = 'pdm-obs-staging+obs-production';
const APPROVAL_WAIT_MS = 1_500;

/** Sums every sample of `name` (any tags) whose tags include `tags`. */
function sample(metricsText: string, name: string, tags: Record<string, string> = {}): number {
  let total = 0;
  for (const line of metricsText.split('\n')) {
    const match = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((label) => [label[1], label[2]]));
    if (Object.entries(tags).every(([key, value]) => labels[key] === value)) total += Number(match[3]);
  }
  return total;
}

describe('worker metrics and logs', () => {
  let stack: Stack;
  let project: TestProject;
  let target: CliTarget;
  let worker: WorkerProcess;
  let metricsUrl: string;
  let fleetWorkflowId = '';

  beforeAll(async () => {
    assertBuilt();
    stack = await createStack();
    project = await createProject('obs', {
      environments: [{ name: 'obs-staging' }, { name: 'obs-production', approvalRoles: ['release-manager'] }],
      migrations: {
        '20241001000001_add_account_note.sql': migration('ALTER TABLE obs_accounts ADD COLUMN note text;'),
        '20241001000002_seed_first_account.sql': migration('INSERT INTO obs_accounts (id) VALUES (1);'),
      },
    });
    for (const url of Object.values(project.urls)) await query(url, 'CREATE TABLE obs_accounts (id bigint PRIMARY KEY)');
    // Production already has the row: the second migration fails there and blocks the pipeline.
    await query(project.urls['obs-production'], 'INSERT INTO obs_accounts (id) VALUES (1)');
    target = { address: stack.address, taskQueue: stack.newTaskQueue(), configPath: project.configPath };
    const port = await freePort(20_000 + Math.floor(Math.random() * 20_000));
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
    worker = await startWorkerProcess(target, { args: ['--metrics-address', `127.0.0.1:${port}`], env: { DBCHANGE_LOG_LEVEL: 'INFO' } });
  });
  afterAll(async () => {
    await stopWorkerProcesses(worker ? [worker] : []);
    await stack?.close();
    await project?.cleanup();
  });

  const scrape = async () => (await fetch(metricsUrl)).text();

  it('counts applied migrations, lock-timeout retries, blocks and approval wait, and logs JSON lines with workflow id and environment', { timeout: 90_000 }, async () => {
    const before = await scrape();
    expect(before).toMatch(/^temporal_\w+/m);
    // The pending gauges are set as the worker starts (pending-metrics.test.ts); every counter starts at nothing.
    const counters = Object.values(METRIC).filter((name) => name !== METRIC.pendingMigrations && name !== METRIC.oldestPendingAge);
    for (const name of counters) expect(before, name).not.toMatch(new RegExp(`^${name}`, 'm'));

    // A session holds a lock on staging's table: the ALTER hits lock_timeout and waits for it.
    const blocker = new pg.Client({ connectionString: project.urls['obs-staging'] });
    await blocker.connect();
    await blocker.query('BEGIN; LOCK TABLE obs_accounts IN ACCESS SHARE MODE');
    const handle = await startPipeline(stack.client, project.config, { requestedBy: 'dave', taskQueue: target.taskQueue });
    await eventually(async () => (await pipelineStatus(stack.client, WORKFLOW_ID)).waitingFor?.includes('waiting for pid'), 'the ALTER to wait on the blocker');
    await blocker.query('COMMIT');
    await blocker.end();

    await eventually(async () => (await pipelineStatus(stack.client, WORKFLOW_ID)).stage === 'waiting-approval', 'the approval gate');
    await new Promise((resolve) => setTimeout(resolve, APPROVAL_WAIT_MS));
    expect(await sendDecision(stack.client, WORKFLOW_ID, 'approve', { user: 'alice', role: 'release-manager' })).toMatchObject({ accepted: true });
    await eventually(async () => (await pipelineStatus(stack.client, WORKFLOW_ID)).stage === 'blocked', 'the block on production');
    await eventually(async () => (await stack.client.workflow.getHandle(WORKFLOW_ID).describe()).raw.pendingActivities?.length === 0, 'the blocked notification to finish');
    expect(await sendDecision(stack.client, WORKFLOW_ID, 'resolve', { user: 'alice', action: 'mark-complete' })).toMatchObject({ accepted: true });
    const result: PipelineStatus = await handle.result();
    expect(result.stage).toBe('complete');
    const stagingRetries = result.results[0].migrations[0].lockRetries ?? 0;
    expect(stagingRetries).toBeGreaterThanOrEqual(1);

    // Metrics are exported as they are recorded; a scrape may still miss the last few milliseconds.
    const after = await eventually(async () => {
      const text = await scrape();
      return sample(text, `${METRIC.approvalWait}_count`) === 1 && text;
    }, 'the approval wait in the metrics');
    // Kept for people reading what the endpoint serves (test/artifacts/ is not committed).
    mkdirSync(ARTIFACTS_DIR, { recursive: true });
    writeFileSync(join(ARTIFACTS_DIR, 'worker-metrics.txt'), after);
    expect(sample(after, METRIC.migrationsApplied, { environment: 'obs-staging' })).toBe(2);
    expect(sample(after, METRIC.migrationsApplied, { environment: 'obs-production' })).toBe(1);
    expect(sample(after, `${METRIC.migrationDuration}_count`)).toBe(3);
    expect(sample(after, METRIC.lockTimeoutRetries, { environment: 'obs-staging' })).toBe(stagingRetries);
    expect(sample(after, METRIC.lockTimeoutRetries, { environment: 'obs-production' })).toBe(0);
    expect(sample(after, METRIC.pipelinesBlocked, { environment: 'obs-production' })).toBe(1);
    expect(sample(after, `${METRIC.approvalWait}_count`, { environment: 'obs-production', outcome: 'approved' })).toBe(1);
    // The wait is measured in workflow time, from the gate to the approval: at least the pause above, and not minutes.
    const waited = sample(after, `${METRIC.approvalWait}_sum`);
    expect(waited).toBeGreaterThanOrEqual(APPROVAL_WAIT_MS);
    expect(waited).toBeLessThan(APPROVAL_WAIT_MS + 30_000);

    const logLines = worker.output().split('\n').filter((line) => line.startsWith('{'));
    const entries = logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(entries.length).toBeGreaterThan(0);
    for (const entry of entries) expect(Object.keys(entry).slice(0, 3)).toEqual(['time', 'level', 'message']);
    const ours = entries.filter((entry) => entry.workflowId === WORKFLOW_ID);
    expect(ours.find((entry) => entry.environment === 'obs-production' && entry.stage === 'waiting-approval')).toMatchObject({
      level: 'INFO',
      message: 'waiting for approval by release-manager before obs-production',
    });
    expect(ours.find((entry) => entry.environment === 'obs-staging' && entry.message === 'applied 20241001000001 on obs-staging')).toMatchObject({ version: '20241001000001', lockRetries: stagingRetries });
  });

  it('counts fleet targets done, blocked and given up per environment, and notifies per wave, not per target', { timeout: 90_000 }, async () => {
    const webhook = await startWebhookReceiver();
    const fleet = await createFleetProject('obsfleet', {
      environment: 'obs-cells',
      targets: ['oc-01', 'oc-02', 'oc-03', 'oc-04', 'oc-05', 'oc-06'],
      waves: '[{count: 1}, {percent: 100}]',
      haltAfterFailures: 2,
      migrations: { '20241001000001_make.sql': migration('CREATE TABLE made (id int);') },
      webhookUrl: webhook.url,
    });
    // oc-04 already has the table: it blocks, and is given up; the other four of its wave go on.
    await query(fleet.url, 'CREATE TABLE oc_04.made (id int)');
    const port = await freePort(20_000 + Math.floor(Math.random() * 20_000));
    const fleetTarget = { address: stack.address, taskQueue: stack.newTaskQueue(), configPath: fleet.configPath };
    const fleetWorker = await startWorkerProcess(fleetTarget, { args: ['--metrics-address', `127.0.0.1:${port}`] });
    try {
      const handle = await startPipeline(stack.client, fleet.config, { requestedBy: 'dave', taskQueue: fleetTarget.taskQueue });
      fleetWorkflowId = handle.workflowId;
      await eventually(async () => (await pipelineStatus(stack.client, handle.workflowId)).stage === 'blocked', 'oc-04 to block', 60_000);
      expect(await sendDecision(stack.client, handle.workflowId, 'resolve', { user: 'alice', action: 'abort', target: 'oc-04' })).toMatchObject({ accepted: true });
      expect((await handle.result()).stage).toBe('complete');
      const text = await eventually(async () => {
        const scraped = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        return sample(scraped, METRIC.fleetTargets, { outcome: 'failed' }) > 0 && scraped;
      }, 'the fleet counters');
      const count = (outcome: string) => sample(text, METRIC.fleetTargets, { environment: 'obs-cells', outcome });
      expect([count('done'), count('blocked'), count('failed')]).toEqual([5, 1, 1]);
      await eventually(async () => webhook.notifications.some((notification) => notification.dbchange.event === 'finished'), 'the last notification');
      expect(webhook.notifications.map((notification) => notification.dbchange.event)).toEqual(['started', 'wave-done', 'blocked', 'wave-done', 'environment-done', 'finished']);
    } finally {
      await stopWorkerProcesses([fleetWorker]);
      webhook.close();
      await fleet.cleanup();
    }
  });

  it('counts the rows a backfill changed and shows its progress, tagged with its environment and name', { timeout: 90_000 }, async () => {
    const backfillProject = await createProject('obsbf', {
      environments: [{ name: 'obs-backfill' }],
      migrations: {},
      backfills: {
        '20241001000000_fill_notes.yaml': ['table: obs_notes', 'key: id', "batch: UPDATE obs_notes SET note = 'filled' WHERE id >= :start AND id < :end", 'maxBatchSize: 40', ''].join('\n'),
      },
    });
    const url = backfillProject.urls['obs-backfill'];
    await query(url, 'CREATE TABLE obs_notes (id bigint PRIMARY KEY, note text)');
    await query(url, 'INSERT INTO obs_notes (id) SELECT generate_series(1, 300)');
    const port = await freePort(20_000 + Math.floor(Math.random() * 20_000));
    const backfillTarget = { address: stack.address, taskQueue: stack.newTaskQueue(), configPath: backfillProject.configPath };
    const backfillWorker = await startWorkerProcess(backfillTarget, { args: ['--metrics-address', `127.0.0.1:${port}`] });
    try {
      const workflowId = await startBackfill(stack.client, backfillProject.config, { name: 'fill_notes', environment: 'obs-backfill', requestedBy: 'dave', taskQueue: backfillTarget.taskQueue });
      expect(((await stack.client.workflow.getHandle(workflowId).result()) as BackfillStatus).state).toBe('finished');
      const tags = { environment: 'obs-backfill', backfill: 'fill_notes' };
      const text = await eventually(async () => {
        const scraped = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        return sample(scraped, METRIC.backfillProgress, tags) === 100 && scraped;
      }, 'the backfill at 100 % in the metrics');
      const [{ filled }] = await query<{ filled: number }>(url, "SELECT count(*)::int AS filled FROM obs_notes WHERE note = 'filled'");
      expect(filled).toBe(300);
      expect(sample(text, METRIC.backfillRows, tags)).toBe(filled);
    } finally {
      await stopWorkerProcesses([backfillWorker]);
      await backfillProject.cleanup();
    }
  });

  it('replays the histories it produced without nondeterminism', async () => {
    expect(await replayWorkflows(stack, [WORKFLOW_ID, fleetWorkflowId])).toBe(2);
  });
});
