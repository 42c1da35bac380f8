import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { pipelineStatus } from '../../cli/pipeline-client';
import { query } from '../helpers/postgres';
import { migration } from '../helpers/project';
import { eventually, replayWorkflows } from '../helpers/stack';
import { useSuite } from '../helpers/suite';

const LOCK_TIMEOUT_MS = 200;

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

describe('transient database errors', () => {
  const suite = useSuite();

  it('retries a migration that hits a real deadlock and applies it exactly once', async () => {
    // lock_timeout above deadlock_timeout (1s), so PostgreSQL's deadlock detector decides, not the lock timeout.
    const project = await suite.project('deadlock', {
      environments: [{ name: 'deadlock-env' }],
      lockTimeout: '5s',
      migrations: {
        '20240201000001_touch_both_tables.sql': migration(
          'UPDATE counters SET n = n + 1 WHERE id = 1;\nSELECT pg_sleep(0.3);\nUPDATE runners SET touched = touched + 1 WHERE id = 1;',
        ),
      },
    });
    const url = project.urls['deadlock-env'];
    await query(url, `CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL); INSERT INTO counters VALUES (1, 0);
                      CREATE TABLE runners (id int PRIMARY KEY, touched int NOT NULL); INSERT INTO runners VALUES (1, 0);`);

    // The other session holds the runners row; once the migration waits for it, it asks for the counters row.
    const other = await connect(url);
    await other.query('BEGIN');
    await other.query('UPDATE runners SET touched = touched + 100 WHERE id = 1');

    const handle = await suite.startPipeline(project);

    const applierPid = await eventually(async () => {
      const rows = await query<{ pid: number }>(url, `SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND cardinality(pg_blocking_pids(pid)) > 0 AND query LIKE 'UPDATE runners%'`);
      return rows[0]?.pid;
    }, 'the migration to wait for the runners row');
    expect(applierPid).toBeGreaterThan(0);
    const otherUpdate = other.query('UPDATE counters SET n = n + 100 WHERE id = 1');
    await otherUpdate; // the deadlock detector aborts the migration (it waited first), so this goes through
    await other.query('COMMIT');
    await other.end();

    const result = await handle.result();
    expect(result.stage).toBe('complete');
    const [outcome] = result.results[0].migrations;
    expect(outcome.outcome).toBe('applied');
    expect(outcome.attempts).toBe(2);
    expect(await query(url, 'SELECT n FROM counters')).toEqual([{ n: 101 }]);
    expect(await query(url, 'SELECT touched FROM runners')).toEqual([{ touched: 101 }]);
    expect(await query(url, `SELECT version, outcome, attempts FROM dbchange_migration_log`)).toEqual([
      { version: '20240201000001', outcome: 'applied', attempts: 2 },
    ]);
  });

  it('never stalls readers longer than lock_timeout + 100 ms while a blocker holds the table, names the blocker, and commits within a second of it ending', async () => {
    const project = await suite.project('lockwait', {
      environments: [{ name: 'lockwait-env' }],
      lockTimeout: `${LOCK_TIMEOUT_MS}ms`,
      migrations: { '20240201000002_add_column_to_hot_table.sql': migration('ALTER TABLE hot ADD COLUMN note text;') },
    });
    const url = project.urls['lockwait-env'];
    await query(url, `CREATE TABLE hot (id int PRIMARY KEY, v int); INSERT INTO hot SELECT g, g FROM generate_series(1, 100) g;`);

    // The blocker: a transaction that read the table and then sits idle, holding ACCESS SHARE.
    const blocker = await connect(url);
    const blockerPid = (await blocker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    await blocker.query('BEGIN');
    await blocker.query('SELECT count(*) FROM hot');

    // Readers: the application's traffic, timed one query at a time.
    const readers = await Promise.all([connect(url), connect(url)]);
    let reading = true;
    let longestReadMs = 0;
    let reads = 0;
    const readLoops = readers.map(async (reader) => {
      while (reading) {
        const started = performance.now();
        await reader.query('SELECT v FROM hot WHERE id = 42');
        longestReadMs = Math.max(longestReadMs, performance.now() - started);
        reads++;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    });

    const handle = await suite.startPipeline(project);

    const waiting = await eventually(async () => {
      const snapshot = await pipelineStatus(suite.stack.client, handle.workflowId);
      return snapshot.waitingFor?.includes(`pid ${blockerPid}`) && snapshot;
    }, 'the status to name the blocking pid');
    expect(waiting.waitingFor).toContain('idle in transaction');
    await new Promise((resolve) => setTimeout(resolve, 3_000)); // hold the lock a few seconds, as a slow transaction would

    await blocker.query('COMMIT');
    const blockerEnded = performance.now();
    await eventually(async () => (await query(url, 'SELECT 1 FROM schema_migrations')).length === 1, 'the migration to commit', 5_000, 10);
    const commitDelayMs = performance.now() - blockerEnded;
    await handle.result();
    reading = false;
    await Promise.all(readLoops);
    await Promise.all([blocker.end(), ...readers.map((reader) => reader.end())]);

    console.info(`lock test: longest reader stall ${longestReadMs.toFixed(1)} ms over ${reads} reads (lock_timeout ${LOCK_TIMEOUT_MS} ms); commit ${commitDelayMs.toFixed(0)} ms after the blocker ended`);
    expect(reads).toBeGreaterThan(100);
    expect(longestReadMs).toBeLessThanOrEqual(LOCK_TIMEOUT_MS + 100);
    expect(commitDelayMs).toBeLessThan(1_000);
    const [ledger] = await query<{ lock_retries: number }>(url, 'SELECT lock_retries FROM dbchange_migration_log');
    expect(ledger.lock_retries).toBeGreaterThanOrEqual(1);
    expect(await query(url, `SELECT column_name FROM information_schema.columns WHERE table_name = 'hot' AND column_name = 'note'`)).toHaveLength(1);
  });

  it('replays every history it produced without nondeterminism', async () => {
    expect(await replayWorkflows(suite.stack, suite.workflowIds)).toBe(suite.workflowIds.length);
  });
});
