import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlBackfill, readBackfillStatus, startBackfill } from '../../cli/backfill-client';
import type { BackfillStatus } from '../../core/backfill-status';
import { sendDecision } from '../../cli/pipeline-client';
import { assertBuilt, parseJsonOutput, runCli, type CliTarget } from '../helpers/processes';
import { query } from '../helpers/postgres';
import { createProject, type TestProject } from '../helpers/project';
import { createStack, eventually, historyText, replayWorkflows, type Stack } from '../helpers/stack';

const PASSWORD = 'backfill-secret-pw';
const ENVIRONMENT = 'bfstaging';

const TOUCH_ONCE = 'UPDATE bf_items SET touched = touched + 1 WHERE id >= :start AND id < :end';
/** A backfill file over bf_items on the ci database: its batch SQL, then its other lines. */
const itemsBackfill = (batch: string, ...lines: string[]) => ['table: bf_items', 'key: id', 'database: ci', `batch: ${batch}`, ...lines].join('\n');

const COUNTING_BACKFILL = itemsBackfill(TOUCH_ONCE, 'targetBatchDuration: 200ms', 'maxBatchSize: 10');
const PAUSING_BACKFILL = itemsBackfill(TOUCH_ONCE, 'maxBatchSize: 50', 'pauseWhen:', '  query: SELECT paused FROM bf_flags');
// Every condition the database can answer here; only lock waiters will hold (no replica, no autovacuum on a tiny table).
const LOCK_AWARE_BACKFILL = itemsBackfill(TOUCH_ONCE, 'maxBatchSize: 50', 'pauseWhen:', '  replicationLagOver: 1s', '  autovacuumOnTable: true', '  lockWaitersOver: 0');
// Division by zero on the row whose id is 150: a permanent error, so the batch that holds it blocks.
const FAILING_BACKFILL = itemsBackfill('UPDATE bf_items SET touched = touched + 1 + 0 / (id - 150) WHERE id >= :start AND id < :end', 'maxBatchSize: 20');
const PLAIN_BACKFILL = itemsBackfill(TOUCH_ONCE, 'maxBatchSize: 50');

describe('backfill workflow', () => {
  let stack: Stack;
  let project: TestProject;
  let taskQueue: string;
  let ciUrl: string;

  beforeAll(async () => {
    assertBuilt();
    stack = await createStack();
    project = await createProject('backfill', {
      environments: [{ name: ENVIRONMENT, databases: ['main', 'ci'] }],
      migrations: {},
      password: PASSWORD,
      backfills: {
        '20241104120000_count_items.yaml': COUNTING_BACKFILL,
        '20241104120001_pausing_items.yaml': PAUSING_BACKFILL,
        '20241104120002_failing_items.yaml': FAILING_BACKFILL,
        '20241104120003_cancelled_items.yaml': PAUSING_BACKFILL,
        '20241104120004_cli_items.yaml': PAUSING_BACKFILL,
        '20241104120005_lock_aware_items.yaml': LOCK_AWARE_BACKFILL,
        '20241104120006_waiting_items.yaml': PLAIN_BACKFILL,
        '20241104120007_checked_items.yaml': PLAIN_BACKFILL,
        '20241104120008_aborted_items.yaml': FAILING_BACKFILL,
      },
    });
    ciUrl = project.urls[`${ENVIRONMENT}/ci`];
    taskQueue = stack.newTaskQueue();
    await stack.startWorker(project.config, taskQueue);
  });
  afterAll(async () => {
    await stack?.close();
    await project?.cleanup();
  });

  const resetTable = async (rows: number) => {
    await query(ciUrl, 'DROP TABLE IF EXISTS bf_items');
    await query(ciUrl, 'CREATE TABLE bf_items (id bigint PRIMARY KEY, touched int NOT NULL DEFAULT 0)');
    await query(ciUrl, 'INSERT INTO bf_items (id) SELECT generate_series(1, $1)', [rows]);
  };
  const start = (name: string) => startBackfill(stack.client, project.config, { name, environment: ENVIRONMENT, requestedBy: 'dave', taskQueue });
  const status = (name: string) => readBackfillStatus(stack.client, ENVIRONMENT, name);
  const waitFor = (name: string, what: string, check: (status: BackfillStatus) => boolean, timeoutMs = 60_000) =>
    eventually(async () => {
      const found = await status(name);
      return check(found) && found;
    }, what, timeoutMs);

  it('updates every row exactly once on the named database, in adaptive batches, continuing as new', { timeout: 150_000 }, async () => {
    await resetTable(2_000);
    const workflowId = await start('count_items');
    expect(workflowId).toBe(`backfill-${ENVIRONMENT}-count_items`);
    const final = await stack.client.workflow.getHandle(workflowId).result() as BackfillStatus;

    expect(final.state).toBe('finished');
    expect(final.target).toBe(`${ENVIRONMENT}/ci`);
    expect(final.progress).toMatchObject({ rowsDone: 2_000, percent: 100, keyStart: 1, keyEnd: 2_001 });
    expect(final.progress!.rowsPerSecond).toBeGreaterThan(0);
    // 2,000 keys in batches of at most 10: over 1,000 events, so at least one continue-as-new.
    expect(final.runs).toBeGreaterThanOrEqual(2);
    const touched = await query<{ touched: number; count: string }>(ciUrl, 'SELECT touched, count(*) FROM bf_items GROUP BY touched');
    expect(touched).toEqual([{ touched: 1, count: '2000' }]);
    const ledger = await query<{ batches: string; rows: string; gaps: string }>(
      ciUrl,
      `SELECT count(*) AS batches, sum(rows) AS rows,
              count(*) FILTER (WHERE batch_start <> coalesce(previous_end, batch_start)) AS gaps
         FROM (SELECT *, lag(batch_end) OVER (ORDER BY batch_start) AS previous_end FROM dbchange_backfill_batches WHERE backfill = 'count_items') batches`,
    );
    expect(ledger[0]).toMatchObject({ rows: '2000', gaps: '0' });
    expect(Number(ledger[0].batches)).toBeGreaterThanOrEqual(200);
    expect(await query(ciUrl, "SELECT state, rows_done FROM dbchange_backfills WHERE name = 'count_items'")).toEqual([{ state: 'finished', rows_done: '2000' }]);
    // The main database holds none of it.
    expect(await query(project.urls[`${ENVIRONMENT}/main`], "SELECT to_regclass('dbchange_backfill_batches') AS ledger")).toEqual([{ ledger: null }]);
    expect(await historyText(stack, workflowId)).not.toContain(PASSWORD);
    expect(await replayWorkflows(stack, [workflowId])).toBeGreaterThanOrEqual(2);

    // Started again, it finds the database's record and ends without touching a row.
    const again = await stack.client.workflow.getHandle(await start('count_items')).result() as BackfillStatus;
    expect(again.summary).toMatch(/had already finished/);
    expect(await query(ciUrl, 'SELECT max(touched) AS most FROM bf_items')).toEqual([{ most: 1 }]);

    // Edited after it finished, it would run on no key (its batches are recorded by name): it says so, and runs nothing.
    writeFileSync(join(project.dir, 'db/backfills/20241104120000_count_items.yaml'), COUNTING_BACKFILL.replace('touched + 1', 'touched + 10'));
    const edited = await stack.client.workflow.getHandle(await start('count_items')).result() as BackfillStatus;
    expect(edited.state).toBe('finished');
    expect(edited.summary).toBe(`20241104120000_count_items.yaml changed after this backfill finished on ${ENVIRONMENT}/ci; its batches are recorded by name, so the edited SQL would run on no key. To run it over the table, save it as a new backfill (a new name); to keep the record straight, restore the file`);
    expect(await query(ciUrl, 'SELECT max(touched) AS most FROM bf_items')).toEqual([{ most: 1 }]);
    writeFileSync(join(project.dir, 'db/backfills/20241104120000_count_items.yaml'), COUNTING_BACKFILL);
  });

  it('pauses while its pause query holds, saying which condition and its value, and while a person pauses it', { timeout: 120_000 }, async () => {
    await resetTable(1_000);
    await query(ciUrl, 'DROP TABLE IF EXISTS bf_flags');
    await query(ciUrl, 'CREATE TABLE bf_flags AS SELECT true AS paused');
    const workflowId = await start('pausing_items');
    const paused = await waitFor('pausing_items', 'a pause by its condition', (found) => found.paused?.by === 'condition');
    expect(paused.state).toBe('paused');
    expect(paused.paused).toMatchObject({ by: 'condition', condition: 'query', value: 'true' });
    expect(await query(ciUrl, 'SELECT count(*) AS rows FROM bf_items WHERE touched > 0')).toEqual([{ rows: '0' }]);

    // A person's pause holds it even once the condition ends; an unknown user is refused, and both are recorded.
    expect(await controlBackfill(stack.client, ENVIRONMENT, 'pausing_items', 'pause', { user: 'alice', comment: 'replica work' })).toMatchObject({ accepted: true });
    await query(ciUrl, 'UPDATE bf_flags SET paused = false');
    const byPerson = await waitFor('pausing_items', 'a pause by alice', (found) => found.paused?.by === 'person');
    expect(byPerson.paused).toMatchObject({ by: 'person', user: 'alice' });
    expect(await controlBackfill(stack.client, ENVIRONMENT, 'pausing_items', 'resume', { user: 'mallory' })).toMatchObject({ accepted: false });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await query(ciUrl, 'SELECT count(*) AS rows FROM bf_items WHERE touched > 0')).toEqual([{ rows: '0' }]);
    expect(await controlBackfill(stack.client, ENVIRONMENT, 'pausing_items', 'resume', { user: 'carol' })).toMatchObject({ accepted: true });

    const final = await stack.client.workflow.getHandle(workflowId).result() as BackfillStatus;
    expect(final.state).toBe('finished');
    expect(final.decisions.map((decision) => [decision.kind, decision.user, decision.accepted])).toEqual([
      ['pause', 'alice', true],
      ['resume', 'mallory', false],
      ['resume', 'carol', true],
    ]);
    expect(final.decisions[0]).toMatchObject({ comment: 'replica work', at: expect.stringMatching(/^\d{4}-/) });
    expect(await query(ciUrl, 'SELECT count(*) AS rows FROM bf_items WHERE touched = 1')).toEqual([{ rows: '1000' }]);
  });

  it('blocks on a batch that fails, naming its keys and the error; skip-batch records the range as skipped', { timeout: 120_000 }, async () => {
    await resetTable(300);
    const workflowId = await start('failing_items');
    const blocked = await waitFor('failing_items', 'the failing batch to block', (found) => found.state === 'blocked');
    expect(blocked.blocked).toMatchObject({ start: 141, end: 161, actions: ['retry', 'skip-batch', 'abort'] });
    expect(blocked.blocked!.error).toMatch(/batch of keys 141\.\.160 of 20241104120002_failing_items\.yaml failed: 22012: division by zero/);

    // A pipeline's action is refused here; skip-batch goes on past the range.
    expect(await sendDecision(stack.client, workflowId, 'resolve', { user: 'alice', action: 'mark-complete' })).toMatchObject({ accepted: false });
    expect(await sendDecision(stack.client, workflowId, 'resolve', { user: 'alice', action: 'skip-batch', comment: 'row 150 is fixed by hand' })).toMatchObject({ accepted: true });
    const final = await stack.client.workflow.getHandle(workflowId).result() as BackfillStatus;
    expect(final.state).toBe('finished');
    expect(await query(ciUrl, 'SELECT count(*) FILTER (WHERE touched = 1) AS done, count(*) FILTER (WHERE touched = 0) AS left_out FROM bf_items')).toEqual([{ done: '280', left_out: '20' }]);
    expect(await query(ciUrl, "SELECT batch_start, batch_end, outcome, decided_by FROM dbchange_backfill_batches WHERE backfill = 'failing_items' AND outcome = 'skipped'")).toEqual([
      { batch_start: '141', batch_end: '161', outcome: 'skipped', decided_by: 'alice' },
    ]);
  });

  it('ends when a person cancels it, and the database records who', { timeout: 60_000 }, async () => {
    await resetTable(1_000);
    await query(ciUrl, 'UPDATE bf_flags SET paused = true');
    const workflowId = await start('cancelled_items');
    await waitFor('cancelled_items', 'a pause by its condition', (found) => found.paused?.by === 'condition');
    expect(await controlBackfill(stack.client, ENVIRONMENT, 'cancelled_items', 'cancel', { user: 'alice' })).toMatchObject({ accepted: true });
    const final = await stack.client.workflow.getHandle(workflowId).result() as BackfillStatus;
    expect(final.state).toBe('cancelled');
    expect(await query(ciUrl, "SELECT state, decided_by FROM dbchange_backfills WHERE name = 'cancelled_items'")).toEqual([{ state: 'cancelled', decided_by: 'alice' }]);
  });

  it('is driven by dbchange backfill start|status|pause|resume|cancel, and the UI shows where it stands', { timeout: 90_000 }, async () => {
    await resetTable(500);
    await query(ciUrl, 'CREATE TABLE IF NOT EXISTS bf_flags AS SELECT true AS paused');
    await query(ciUrl, 'UPDATE bf_flags SET paused = true');
    const cli: CliTarget = { address: stack.address, taskQueue, configPath: project.configPath };
    const started = await runCli(cli, ['backfill', 'start', 'cli_items', '--env', ENVIRONMENT, '--as', 'dave', '--json']);
    expect(started.code, started.stderr).toBe(0);
    expect(parseJsonOutput(started)).toMatchObject({ kind: 'backfill-started', workflowId: `backfill-${ENVIRONMENT}-cli_items` });
    const again = await runCli(cli, ['backfill', 'start', 'cli_items', '--env', ENVIRONMENT, '--as', 'dave']);
    expect(again).toMatchObject({ code: 3, stderr: expect.stringContaining(`backfill backfill-${ENVIRONMENT}-cli_items is already running`) });

    await waitFor('cli_items', 'a pause by its condition', (found) => found.paused?.by === 'condition');
    const status = await runCli(cli, ['backfill', 'status', 'cli_items', '--env', ENVIRONMENT]);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`cli_items on ${ENVIRONMENT}/ci: paused`);
    expect(status.stdout).toContain('query: the pause query returned true (SELECT paused FROM bf_flags)');
    const metadata = await stack.client.workflow.getHandle(`backfill-${ENVIRONMENT}-cli_items`).query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    expect(metadata.currentDetails).toContain(`**cli_items on ${ENVIRONMENT}/ci: paused**`);
    expect(metadata.currentDetails).toContain('0% of keys 1..500 · 0 rows');

    expect((await runCli(cli, ['backfill', 'pause', 'cli_items', '--env', ENVIRONMENT, '--as', 'mallory'])).code).toBe(3);
    expect((await runCli(cli, ['backfill', 'pause', 'cli_items', '--env', ENVIRONMENT, '--as', 'alice', '--comment', 'hold on'])).stdout).toBe('accepted: paused after the running batch\n');
    await query(ciUrl, 'UPDATE bf_flags SET paused = false');
    expect((await runCli(cli, ['backfill', 'resume', 'cli_items', '--env', ENVIRONMENT, '--as', 'alice'])).stdout).toBe('accepted: resumed\n');
    const finished = await waitFor('cli_items', 'the end', (found) => found.state === 'finished');
    expect(finished.progress).toMatchObject({ rowsDone: 500, percent: 100 });
    const json = parseJsonOutput<{ status: BackfillStatus }>(await runCli(cli, ['backfill', 'status', 'cli_items', '--env', ENVIRONMENT, '--json']));
    expect(json.status.decisions.map((decision) => `${decision.kind} ${decision.user} ${decision.accepted}`)).toEqual(['pause mallory false', 'pause alice true', 'resume alice true']);
    expect((await runCli(cli, ['backfill', 'cancel', 'cli_items', '--env', ENVIRONMENT, '--as', 'alice'])).code).toBe(3);
    expect((await runCli(cli, ['backfill', 'status', 'nothing_here', '--env', ENVIRONMENT])).stderr).toContain('no backfill backfill-bfstaging-nothing_here; start it with `dbchange backfill start nothing_here --env bfstaging`');
  });

  it('pauses while sessions wait for locks on the table, naming how many, and goes on once they are gone', { timeout: 60_000 }, async () => {
    await resetTable(300);
    const holder = new pg.Client({ connectionString: ciUrl });
    const waiter = new pg.Client({ connectionString: ciUrl });
    await holder.connect();
    await waiter.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM bf_items WHERE id = 1 FOR UPDATE');
      const waiting = waiter.query('UPDATE bf_items SET touched = touched WHERE id = 1');
      const workflowId = await start('lock_aware_items');
      const paused = await waitFor('lock_aware_items', 'a pause for lock waiters', (found) => found.paused?.by === 'condition');
      expect(paused.paused).toMatchObject({ condition: 'lockWaitersOver', value: '1', text: 'lockWaitersOver: 1 session waits for locks on the table (limit 0)' });
      await holder.query('COMMIT');
      await waiting;
      const final = await stack.client.workflow.getHandle(workflowId).result() as BackfillStatus;
      expect(final.state).toBe('finished');
      expect(await query(ciUrl, 'SELECT count(*) FILTER (WHERE touched = 1) AS done FROM bf_items')).toEqual([{ done: '300' }]);
    } finally {
      await holder.end();
      await waiter.end();
    }
  });

  it('retries a batch that hits lock_timeout, showing each failed try and the next, and applies it once the lock is gone', { timeout: 60_000 }, async () => {
    await resetTable(200);
    const holder = new pg.Client({ connectionString: ciUrl });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM bf_items WHERE id = 1 FOR UPDATE');
      const workflowId = await start('waiting_items');
      const retrying = await waitFor('waiting_items', 'a failed try of the first batch', (found) => (found.retry?.attempt ?? 0) >= 2);
      expect(retrying.state).toBe('running');
      expect(retrying.retry).toMatchObject({ maxAttempts: 10, error: expect.stringMatching(/^batch of keys 1\.\.\d+ of 20241104120006_waiting_items\.yaml: 55P03/), nextTryAt: expect.stringMatching(/^\d{4}-/) });
      const cli: CliTarget = { address: stack.address, taskQueue, configPath: project.configPath };
      expect((await runCli(cli, ['backfill', 'status', 'waiting_items', '--env', ENVIRONMENT])).stdout).toMatch(/try \d+ of 10 failed: batch of keys 1\.\.\d+ of 20241104120006_waiting_items\.yaml: 55P03 .*; next try at \d\d:\d\d:\d\d UTC/);
      expect(await query(ciUrl, 'SELECT count(*) AS rows FROM bf_items WHERE touched > 0')).toEqual([{ rows: '0' }]);
      await holder.query('COMMIT');

      const final = await stack.client.workflow.getHandle(workflowId).result() as BackfillStatus;
      expect(final.state).toBe('finished');
      expect(final.retry).toBeUndefined();
      expect(await query(ciUrl, 'SELECT touched, count(*) AS rows FROM bf_items GROUP BY touched')).toEqual([{ touched: 1, rows: '200' }]);
    } finally {
      await holder.end();
    }
  });

  it('a blocked batch is run again on resolve retry once its cause is fixed, and ends on resolve abort', { timeout: 90_000 }, async () => {
    await resetTable(200);
    // The row with id 120 may not be touched: a check violation, not a transient error, so the batch blocks.
    await query(ciUrl, 'ALTER TABLE bf_items ADD CONSTRAINT hold_120 CHECK (id <> 120 OR touched = 0)');
    const checked = await start('checked_items');
    const blocked = await waitFor('checked_items', 'the batch holding id 120 to block', (found) => found.state === 'blocked');
    expect(blocked.blocked!.error).toMatch(/of 20241104120007_checked_items\.yaml failed: 23514: new row for relation "bf_items" violates check constraint "hold_120"/);
    expect(blocked.blocked!.start).toBeLessThanOrEqual(120);
    expect(blocked.blocked!.end).toBeGreaterThan(120);
    await query(ciUrl, 'ALTER TABLE bf_items DROP CONSTRAINT hold_120');
    expect(await sendDecision(stack.client, checked, 'resolve', { user: 'carol', action: 'retry', comment: 'constraint dropped' })).toMatchObject({ accepted: true });
    const retried = await stack.client.workflow.getHandle(checked).result() as BackfillStatus;
    expect(retried.state).toBe('finished');
    expect(await query(ciUrl, 'SELECT touched, count(*) AS rows FROM bf_items GROUP BY touched')).toEqual([{ touched: 1, rows: '200' }]);
    expect(retried.decisions.map((decision) => [decision.kind, decision.user, decision.accepted])).toEqual([['resolve', 'carol', true]]);

    await resetTable(300);
    const aborted = await start('aborted_items');
    await waitFor('aborted_items', 'the batch holding id 150 to block', (found) => found.state === 'blocked');
    expect(await sendDecision(stack.client, aborted, 'resolve', { user: 'alice', action: 'abort', comment: 'row 150 needs a data fix first' })).toMatchObject({ accepted: true });
    const final = await stack.client.workflow.getHandle(aborted).result() as BackfillStatus;
    expect(final.state).toBe('aborted');
    expect(final.summary).toMatch(/^aborted by alice on keys 141\.\.160: /);
    expect(await query(ciUrl, "SELECT state, decided_by FROM dbchange_backfills WHERE name = 'aborted_items'")).toEqual([{ state: 'aborted', decided_by: 'alice' }]);
    // What ran before the block stays applied, once; nothing after it ran.
    expect(await query(ciUrl, 'SELECT count(*) FILTER (WHERE touched = 1) AS done, count(*) FILTER (WHERE touched = 0) AS left_out FROM bf_items')).toEqual([{ done: '140', left_out: '160' }]);
  });
});
