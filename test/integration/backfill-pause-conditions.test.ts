// The two pause conditions only a real server can make true: a replica whose replay falls behind, and autovacuum
// working on the backfilled table. They run on a throwaway primary (autovacuum looks every second) with a hot
// standby streaming from it, never on the machine's shared PostgreSQL.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBackfillStatus, startBackfill } from '../../cli/backfill-client';
import type { BackfillStatus } from '../../core/backfill-status';
import { startEmbeddedPostgres, startEmbeddedStandby, type EmbeddedPostgres } from '../../examples/demo/embedded-db';
import { freePort } from '../../examples/demo/ports';
import { assertBuilt } from '../helpers/processes';
import { query } from '../helpers/postgres';
import { createProject, type TestProject } from '../helpers/project';
import { createStack, eventually, type Stack } from '../helpers/stack';

const ENVIRONMENT = 'bfreplica';
const ROWS = 4_000;
// 500 rows a second in batches of at most 100: about 8 s of work, so each condition lands mid-backfill.
const pacedBackfill = (table: string, pauseWhen: string) =>
  [
    `table: ${table}`,
    'key: id',
    `batch: UPDATE ${table} SET runs = runs + 1 WHERE id >= :start AND id < :end`,
    'targetBatchDuration: 200ms',
    'maxBatchSize: 100',
    'maxRowsPerSecond: 500',
    'pauseWhen:',
    `  ${pauseWhen}`,
  ].join('\n');

/** A moment on the primary's clock, which also stamps each ledger row's finished_at. */
type DbTime = string;

describe('pause conditions a real server makes true', () => {
  let stack: Stack;
  let project: TestProject;
  let primary: EmbeddedPostgres;
  let standby: EmbeddedPostgres;
  let folder: string;
  let url: string;
  let taskQueue: string;

  beforeAll(async () => {
    assertBuilt();
    stack = await createStack();
    folder = mkdtempSync(join(tmpdir(), 'dbchange-bfreplica-'));
    primary = await startEmbeddedPostgres({ dataDir: join(folder, 'primary'), port: await freePort(), settings: { autovacuum_naptime: '1s' } });
    // Status replies every second, so the primary sees replay stop, and then catch up, within a second.
    standby = await startEmbeddedStandby(primary, { dataDir: join(folder, 'standby'), port: await freePort(), settings: { wal_receiver_status_interval: '1s' } });
    project = await createProject('bfreplica', {
      environments: [{ name: ENVIRONMENT }],
      migrations: {},
      backfills: {
        '20241104120000_lagging_rows.yaml': pacedBackfill('bf_lag', 'replicationLagOver: 1s'),
        '20241104120001_vacuumed_rows.yaml': pacedBackfill('bf_vac', 'autovacuumOnTable: true'),
      },
      adminUrl: primary.urlOf('postgres'),
    });
    url = project.urls[ENVIRONMENT];
    taskQueue = stack.newTaskQueue();
    await stack.startWorker(project.config, taskQueue);
  });
  afterAll(async () => {
    await stack?.close();
    await project?.cleanup().catch(() => undefined);
    await standby?.remove().catch(() => undefined);
    await primary?.remove().catch(() => undefined);
    if (folder) rmSync(folder, { recursive: true, force: true });
  });

  const start = (name: string) => startBackfill(stack.client, project.config, { name, environment: ENVIRONMENT, requestedBy: 'dave', taskQueue });
  const status = (name: string) => readBackfillStatus(stack.client, ENVIRONMENT, name);
  const batchesSince = async (name: string, since: DbTime) =>
    Number((await query<{ batches: string }>(url, 'SELECT count(*) AS batches FROM dbchange_backfill_batches WHERE backfill = $1 AND finished_at > $2', [name, since]))[0].batches);
  const batchesDone = (name: string) => batchesSince(name, '-infinity');
  const secondsSince = async (since: DbTime, until: DbTime) => Number((await query<{ s: number }>(url, 'SELECT extract(epoch FROM $2::timestamptz - $1::timestamptz)::float8 AS s', [since, until]))[0].s);
  const firstBatchAfter = (name: string, since: DbTime) =>
    eventually(async () => (await query<{ at: string }>(url, 'SELECT min(finished_at)::text AS at FROM dbchange_backfill_batches WHERE backfill = $1 AND finished_at > $2', [name, since]))[0].at ?? false, `a batch of ${name} after the condition ended`, 45_000, 100);
  const createTable = async (table: string, options = '') => {
    await query(url, `CREATE TABLE ${table} (id bigint PRIMARY KEY, runs int NOT NULL DEFAULT 0, pad text) ${options}`);
    await query(url, `INSERT INTO ${table} (id, pad) SELECT n, repeat('x', 200) FROM generate_series(1, $1) AS n`, [ROWS]);
  };
  const runsPerRow = (on: string, table: string) => query<{ runs: number; rows: number }>(on, `SELECT runs, count(*)::int AS rows FROM ${table} GROUP BY runs ORDER BY runs`);

  it('pauses while the replica replays behind its limit, naming the lag, and goes on once it has caught up', { timeout: 120_000 }, async () => {
    await createTable('bf_lag');
    const standbyUrl = standby.urlOf(new URL(url).pathname.slice(1));
    await eventually(async () => (await query<{ rows: number }>(standbyUrl, 'SELECT count(*)::int AS rows FROM bf_lag').catch(() => [{ rows: 0 }]))[0].rows === ROWS, 'the standby to replay the new table');
    const lag = async () => (await query<{ lag_ms: number | null; state: string; at: DbTime }>(url, `SELECT (extract(epoch FROM replay_lag) * 1000)::float8 AS lag_ms, state, clock_timestamp()::text AS at FROM pg_stat_replication`))[0];
    expect((await lag()).state).toBe('streaming');

    const workflowId = await start('lagging_rows');
    await eventually(async () => (await batchesDone('lagging_rows')) >= 3, 'three batches before the replica stops');
    await query(standbyUrl, 'SELECT pg_wal_replay_pause()');
    const over = await eventually(async () => {
      const reading = await lag();
      return (reading.lag_ms ?? 0) > 1_000 && reading;
    }, 'the replay lag to pass 1 s', 30_000, 50);

    const paused = await eventually(async () => {
      const found = await status('lagging_rows');
      return found.paused?.by === 'condition' && found;
    }, 'a pause for replication lag', 30_000);
    expect(paused.state).toBe('paused');
    expect(paused.paused).toMatchObject({ condition: 'replicationLagOver', text: expect.stringMatching(/^replicationLagOver: replica replay lag \d+\.\ds is over 1\.0s$/) });
    const afterOver = await batchesSince('lagging_rows', over.at);
    // Goal: the backfill stops within one batch of the condition coming true.
    expect(afterOver).toBeLessThanOrEqual(1);
    const held = await batchesDone('lagging_rows');
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(await batchesDone('lagging_rows')).toBe(held);
    expect((await status('lagging_rows')).paused).toMatchObject({ condition: 'replicationLagOver' });

    await query(standbyUrl, 'SELECT pg_wal_replay_resume()');
    const caughtUp = await eventually(async () => {
      const reading = await lag();
      return (reading.lag_ms ?? 0) <= 1_000 && reading;
    }, 'the replica to catch up', 30_000, 50);
    const wentOn = await firstBatchAfter('lagging_rows', caughtUp.at);
    console.info(
      `backfill replication lag: ${afterOver} batch(es) after the lag passed 1 s (${paused.paused?.by === 'condition' ? paused.paused.text : ''}); ` +
        `went on ${(await secondsSince(caughtUp.at, wentOn)).toFixed(1)} s after the replica caught up`,
    );

    const final = await stack.client.workflow.getHandle(workflowId).result() as BackfillStatus;
    expect(final.state).toBe('finished');
    expect(await runsPerRow(url, 'bf_lag')).toEqual([{ runs: 1, rows: ROWS }]);
    // The replica holds the same rows: it was a real standby, replaying all along.
    await eventually(async () => JSON.stringify(await runsPerRow(standbyUrl, 'bf_lag')) === JSON.stringify([{ runs: 1, rows: ROWS }]), 'the standby to replay the backfill');
  });

  it('pauses while autovacuum works on the table, and goes on once it is done', { timeout: 120_000 }, async () => {
    // Dead tuples on every page, while autovacuum may not touch the table yet.
    await createTable('bf_vac', 'WITH (autovacuum_enabled = false)');
    await query(url, "UPDATE bf_vac SET pad = repeat('y', 200)");
    const vacuum = async () =>
      (await query<{ running: boolean; at: DbTime }>(url, `SELECT EXISTS (SELECT 1 FROM pg_stat_progress_vacuum WHERE relid = 'bf_vac'::regclass) AS running, clock_timestamp()::text AS at`))[0];

    const workflowId = await start('vacuumed_rows');
    await eventually(async () => (await batchesDone('vacuumed_rows')) >= 3, 'three batches before autovacuum');
    // A slow vacuum (it sleeps 40 ms for every 10 cost units), so it works on the table for some seconds.
    await query(url, 'ALTER TABLE bf_vac SET (autovacuum_enabled = true, autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_cost_delay = 40, autovacuum_vacuum_cost_limit = 10)');
    const began = await eventually(async () => {
      const reading = await vacuum();
      return reading.running && reading;
    }, 'autovacuum to start on bf_vac', 30_000, 50);

    const paused = await eventually(async () => {
      const found = await status('vacuumed_rows');
      return found.paused?.by === 'condition' && found;
    }, 'a pause for autovacuum', 30_000);
    expect(paused.paused).toMatchObject({ condition: 'autovacuumOnTable', value: 'running', text: 'autovacuumOnTable: autovacuum is working on the table' });
    const afterStart = await batchesSince('vacuumed_rows', began.at);
    expect(afterStart).toBeLessThanOrEqual(1);

    await eventually(async () => !(await vacuum()).running, 'autovacuum to finish on bf_vac', 60_000, 50);
    // No further vacuum now, so the rest of the run is the backfill's own.
    await query(url, 'ALTER TABLE bf_vac SET (autovacuum_enabled = false)');
    const [{ ended }] = await query<{ ended: DbTime }>(url, "SELECT last_autovacuum::text AS ended FROM pg_stat_user_tables WHERE relname = 'bf_vac'");
    expect(await secondsSince(began.at, ended)).toBeGreaterThan(0);
    // Nothing ran while it worked.
    const during = Number((await query<{ batches: string }>(url, "SELECT count(*) AS batches FROM dbchange_backfill_batches WHERE backfill = 'vacuumed_rows' AND finished_at > $1 AND finished_at <= $2", [began.at, ended]))[0].batches);
    expect(during).toBe(afterStart);
    const wentOn = await firstBatchAfter('vacuumed_rows', ended);
    console.info(
      `backfill autovacuum: ${afterStart} batch(es) after autovacuum began; it worked ${(await secondsSince(began.at, ended)).toFixed(1)} s; ` +
        `went on ${(await secondsSince(ended, wentOn)).toFixed(1)} s after it ended`,
    );

    const final = await stack.client.workflow.getHandle(workflowId).result() as BackfillStatus;
    expect(final.state).toBe('finished');
    expect(await runsPerRow(url, 'bf_vac')).toEqual([{ runs: 1, rows: ROWS }]);
  });
});
