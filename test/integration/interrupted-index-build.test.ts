// A non-transactional migration never counts as applied while an index it builds is INVALID: the backend of a real
// CREATE INDEX CONCURRENTLY is killed mid-build, and the retry drops the broken index and builds it again.
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { sendDecision } from '../../cli/pipeline-client';
import { query } from '../helpers/postgres';
import { migration } from '../helpers/project';
import { eventually, replayWorkflows } from '../helpers/stack';
import { useSuite } from '../helpers/suite';

const BUILD = '20240903000001_index_builds_concurrently.sql';
const FAILING_BUILD = '20240903000002_expression_index_concurrently.sql';
const INVALID = `SELECT c.relname AS index FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE NOT i.indisvalid ORDER BY 1`;

describe('interrupted concurrent index builds', () => {
  const suite = useSuite();

  it('drops the INVALID index an interrupted CREATE INDEX CONCURRENTLY left, builds it again, and records it applied only when valid', async () => {
    const project = await suite.project('cicretry', {
      environments: [{ name: 'cic-env' }],
      migrations: { [BUILD]: migration('CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_events_actor ON events (actor_id);', { transaction: false }) },
    });
    const url = project.urls['cic-env'];
    await query(url, 'CREATE TABLE events (id bigint PRIMARY KEY, actor_id bigint); INSERT INTO events SELECT g, g % 1000 FROM generate_series(1, 50000) g;');
    // An open transaction with a snapshot: the build creates its INVALID index, then waits for this to end.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    await holder.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await holder.query('SELECT count(*) FROM pg_class');
    try {
      const handle = await suite.startPipeline(project);
      const builder = await eventually(async () => {
        const rows = await query<{ pid: number }>(url, `SELECT pid FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%' AND state = 'active'`);
        const invalid = await query(url, INVALID);
        return rows.length === 1 && invalid.length === 1 && rows[0].pid;
      }, 'the concurrent build to have created its index and be waiting');
      expect(await query(url, INVALID)).toEqual([{ index: 'idx_events_actor' }]);
      await query(url, 'SELECT pg_terminate_backend($1)', [builder]);
      await holder.query('COMMIT');

      const result = await handle.result();
      expect(result.stage).toBe('complete');
      const [outcome] = result.results[0].migrations;
      expect(outcome).toMatchObject({ outcome: 'applied', note: 'dropped INVALID public.idx_events_actor left by an interrupted build, and built again' });
      expect(await query(url, INVALID)).toEqual([]);
      expect(await query(url, `SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_events_actor'::regclass`)).toEqual([{ indisvalid: true }]);
      expect(await query(url, 'SELECT outcome FROM dbchange_migration_log')).toEqual([{ outcome: 'applied' }]);
    } finally {
      await holder.end().catch(() => undefined);
    }
  });

  it('a concurrent build that fails names the INVALID index it left, and a retry after the data is fixed builds it valid', async () => {
    const project = await suite.project('cicunique', {
      environments: [{ name: 'cicu-env' }],
      migrations: { [FAILING_BUILD]: migration('CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_plans_ratio ON plans ((100 / seats));', { transaction: false }) },
    });
    const url = project.urls['cicu-env'];
    await query(url, `CREATE TABLE plans (id int PRIMARY KEY, seats int); INSERT INTO plans VALUES (1, 10), (2, 0);`);
    const handle = await suite.startPipeline(project);
    const blocked = await suite.waitForStage(handle.workflowId, 'blocked');
    expect(blocked.lastError).toContain(`${FAILING_BUILD}:2: ERROR 22012: division by zero`);
    expect(blocked.lastError).toContain('it left INVALID index public.idx_plans_ratio, which a retry drops and builds again');
    expect(await query(url, INVALID)).toEqual([{ index: 'idx_plans_ratio' }]);

    await query(url, `UPDATE plans SET seats = 1 WHERE id = 2`);
    await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'alice', action: 'retry', comment: 'duplicate fixed' });
    const result = await handle.result();
    expect(result.results[0].migrations[0]).toMatchObject({ outcome: 'applied' });
    expect(await query(url, INVALID)).toEqual([]);
    expect(await query(url, 'SELECT outcome FROM dbchange_migration_log ORDER BY id')).toEqual([{ outcome: 'failed' }, { outcome: 'applied' }]);
  });

  it('replays every history it produced without nondeterminism', async () => {
    expect(await replayWorkflows(suite.stack, suite.workflowIds)).toBe(suite.workflowIds.length);
  });
});
