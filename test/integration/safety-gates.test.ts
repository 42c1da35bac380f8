import { describe, expect, it } from 'vitest';
import { sendDecision } from '../../cli/pipeline-client';
import { runPrechecks } from '../../activities/prechecks';
import { DatabasePools } from '../../activities/db';
import { query } from '../helpers/postgres';
import { migration } from '../helpers/project';
import { replayWorkflows } from '../helpers/stack';
import { useSuite } from '../helpers/suite';

// Seed 000/001: runner managers whose runners were not yet copied into the sharded table.
const RUNNERS_SCHEMA = `
  CREATE TABLE ci_runners_e59bb2812d (id bigint PRIMARY KEY);
  CREATE TABLE ci_runner_machines (id bigint PRIMARY KEY, runner_id bigint);`;
const ADD_FK_NOT_VALID = '20240401000001_add_fk_ci_runner_machines_not_valid.sql';

/** Runners 1..parents exist; `missing` more runners are referenced but absent, each by a different number of machines. */
function plantOrphans(parents: number, missing: number) {
  const existing = Array.from({ length: parents }, (_, index) => index + 1);
  const absent = Array.from({ length: missing }, (_, index) => 1000 + index);
  const machines: [number, number | null][] = [];
  for (const runner of existing) machines.push([machines.length + 1, runner]);
  absent.forEach((runner, index) => {
    for (let copy = 0; copy <= index % 3; copy++) machines.push([machines.length + 1, runner]);
  });
  machines.push([machines.length + 1, null]); // a NULL key is not checked by the key (MATCH SIMPLE)
  const orphanRows = machines.filter(([, runner]) => runner !== null && runner >= 1000).length;
  const sql = [
    `INSERT INTO ci_runners_e59bb2812d VALUES ${existing.map((id) => `(${id})`).join(', ')};`,
    `INSERT INTO ci_runner_machines VALUES ${machines.map(([id, runner]) => `(${id}, ${runner ?? 'NULL'})`).join(', ')};`,
  ].join('\n');
  return { sql, orphanRows, missingParents: absent.length, firstMissing: absent.slice(0, 5).map(String) };
}

describe('safety gates in the post-deploy pipeline', () => {
  const suite = useSuite();

  it('the foreign-key precheck counts exactly the orphans planted, read-only', async () => {
    const project = await suite.project('orphans', { environments: [{ name: 'orphan-env' }], migrations: {} });
    const url = project.urls['orphan-env'];
    const planted = plantOrphans(20, 8);
    await query(url, RUNNERS_SCHEMA);
    await query(url, planted.sql);
    const pools = new DatabasePools();
    try {
      const sql = 'ALTER TABLE ci_runner_machines\n  ADD CONSTRAINT fk_runner FOREIGN KEY (runner_id) REFERENCES ci_runners_e59bb2812d (id) NOT VALID;';
      const findings = await runPrechecks(pools.pool(project.config.environments[0].databases[0]), [{ label: 'step-1', sql }], 10_000);
      expect(findings).toHaveLength(1);
      expect(findings[0]).toMatchObject({ severity: 'block', check: 'foreign-key-orphans', source: 'step-1:1', count: planted.orphanRows, sample: planted.firstMissing });
      expect(findings[0].message).toContain(`point at ${planted.missingParents} missing ci_runners_e59bb2812d rows`);
      expect(findings[0].message).toContain('every new INSERT or UPDATE is checked at once');

      // The same key added valid fails on its own and rolls back: a warning, not a block.
      const valid = await runPrechecks(pools.pool(project.config.environments[0].databases[0]), [{ label: 'step-2', sql: sql.replace(' NOT VALID', '') }], 10_000);
      expect(valid.map((finding) => [finding.severity, finding.count])).toEqual([['warn', planted.orphanRows]]);
    } finally {
      await pools.close();
    }
    expect(await query(url, `SELECT count(*)::int AS n FROM pg_constraint WHERE conname = 'fk_runner'`)).toEqual([{ n: 0 }]);
  });

  it('counts NULLs, CHECK violations and duplicates, and says whether a type change rewrites the table', async () => {
    const project = await suite.project('prechecks', { environments: [{ name: 'precheck-env' }], migrations: {} });
    const url = project.urls['precheck-env'];
    await query(url, `CREATE TABLE orders (id bigint PRIMARY KEY, email text, total int, note varchar(20));
      INSERT INTO orders SELECT g, CASE WHEN g % 4 = 0 THEN NULL ELSE 'user' || (g % 7) END, g - 10, 'n' FROM generate_series(1, 40) g;`);
    const nulls = (await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM orders WHERE email IS NULL'))[0].n;
    const negative = (await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM orders WHERE total < 0'))[0].n;
    const duplicated = (await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM (SELECT email FROM orders WHERE email IS NOT NULL GROUP BY email HAVING count(*) > 1) d'))[0].n;
    const sql = [
      'ALTER TABLE orders ALTER COLUMN email SET NOT NULL;',
      'ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0);',
      'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS orders_email ON orders (email);',
      'ALTER TABLE orders ALTER COLUMN total TYPE bigint;',
      'ALTER TABLE orders ALTER COLUMN note TYPE text;',
    ].join('\n');
    const pools = new DatabasePools();
    try {
      const findings = await runPrechecks(pools.pool(project.config.environments[0].databases[0]), [{ label: 'checks.sql', sql, transactional: false }], 10_000);
      expect(findings.map((finding) => [finding.source, finding.check, finding.severity, finding.count])).toEqual([
        ['checks.sql:1', 'not-null-violations', 'warn', nulls],
        ['checks.sql:2', 'check-violations', 'warn', negative],
        ['checks.sql:3', 'unique-duplicates', 'block', duplicated],
        ['checks.sql:4', 'table-rewrite', 'warn', undefined],
        ['checks.sql:5', 'table-rewrite', 'warn', undefined],
      ]);
      expect(findings[3].message).toContain('rewrites the whole table');
      expect(findings[4].message).toContain('no rewrite');
    } finally {
      await pools.close();
    }
  });

  it('blocks the seed-000 key before any SQL is applied, and applies it once the runners are backfilled', async () => {
    const planted = plantOrphans(3, 2);
    const project = await suite.project('seed000', {
      environments: [{ name: 'fk000-staging' }, { name: 'fk000-production' }],
      migrations: {
        [ADD_FK_NOT_VALID]: migration(
          'ALTER TABLE ci_runner_machines\n  ADD CONSTRAINT fk_rails_3f92913d27 FOREIGN KEY (runner_id)\n  REFERENCES ci_runners_e59bb2812d (id) ON DELETE CASCADE NOT VALID;',
        ),
      },
    });
    for (const url of Object.values(project.urls)) await query(url, RUNNERS_SCHEMA);
    await query(project.urls['fk000-staging'], planted.sql);
    const handle = await suite.startPipeline(project);
    const blocked = await suite.waitForStage(handle.workflowId, 'blocked');
    expect(blocked.environment).toBe('fk000-staging');
    expect(blocked.lastError).toContain(`prechecks block ${ADD_FK_NOT_VALID}: ${ADD_FK_NOT_VALID}:2: fk_rails_3f92913d27 NOT VALID: ${planted.orphanRows} rows`);
    expect(blocked.results[0].prechecks?.[0]).toMatchObject({ severity: 'block', count: planted.orphanRows });
    // Nothing ran: no constraint, no schema_migrations row, no failure in the ledger.
    expect(await query(project.urls['fk000-staging'], `SELECT conname FROM pg_constraint WHERE conname = 'fk_rails_3f92913d27'`)).toEqual([]);
    expect(await query(project.urls['fk000-staging'], `SELECT to_regclass('schema_migrations') AS t`)).toEqual([{ t: null }]);

    await query(project.urls['fk000-staging'], `INSERT INTO ci_runners_e59bb2812d SELECT DISTINCT runner_id FROM ci_runner_machines m WHERE runner_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ci_runners_e59bb2812d r WHERE r.id = m.runner_id)`);
    await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'alice', action: 'retry', comment: 'runners backfilled' });
    const result = await handle.result();
    expect(result.stage).toBe('complete');
    expect(result.results.map((environment) => environment.prechecks)).toEqual([[], []]);
    for (const url of Object.values(project.urls)) {
      expect(await query(url, `SELECT convalidated FROM pg_constraint WHERE conname = 'fk_rails_3f92913d27'`)).toEqual([{ convalidated: false }]);
    }
  });

  it('replays every history it produced without nondeterminism', async () => {
    expect(await replayWorkflows(suite.stack, suite.workflowIds)).toBe(suite.workflowIds.length);
  });
});
