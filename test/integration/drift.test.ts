import { describe, expect, it } from 'vitest';
import { sendDecision } from '../../cli/pipeline-client';
import { query } from '../helpers/postgres';
import { parseJsonOutput, runCli } from '../helpers/processes';
import { migration } from '../helpers/project';
import { replayWorkflows } from '../helpers/stack';
import { useSuite } from '../helpers/suite';

// Both environments after the same regular migrations (seed 002's schema_migrations check).
const SCHEMA = `
  CREATE TABLE schema_migrations (version varchar PRIMARY KEY);
  INSERT INTO schema_migrations VALUES ('20230101000000');
  CREATE TABLE ci_runners (id bigint PRIMARY KEY);
  CREATE TABLE ci_runner_machines (id bigint PRIMARY KEY, runner_id bigint);
  CREATE TABLE plan_limits (id bigint PRIMARY KEY, web_hook_calls int NOT NULL DEFAULT 0);`;
const REGULAR_ONLY_ON_FIRST = '20230109095622';
const POST_DEPLOY = { '20230109100050_index_plan_limits.sql': migration('CREATE INDEX IF NOT EXISTS index_plan_limits_on_calls ON plan_limits (web_hook_calls);') };

interface DriftJson {
  version: number;
  kind: string;
  comparisons: {
    first: string;
    second: string;
    regular: { onlyInFirst: string[]; onlyInSecond: string[] };
    catalog: { object: string; partitions?: string[] }[];
    differences: string[];
  }[];
}

// A hash-partitioned table with a trigger on the parent, which PostgreSQL clones to each partition.
const PARTITIONED = `
  CREATE TABLE projects (id bigint PRIMARY KEY);
  CREATE TABLE events (id bigint NOT NULL, project_id bigint, created_at timestamptz) PARTITION BY HASH (id);
  CREATE TABLE events_0 PARTITION OF events FOR VALUES WITH (MODULUS 4, REMAINDER 0);
  CREATE TABLE events_1 PARTITION OF events FOR VALUES WITH (MODULUS 4, REMAINDER 1);
  CREATE TABLE events_2 PARTITION OF events FOR VALUES WITH (MODULUS 4, REMAINDER 2);
  CREATE TABLE events_3 PARTITION OF events FOR VALUES WITH (MODULUS 4, REMAINDER 3);
  CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
  CREATE TRIGGER events_touch BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION touch();`;
const TRIGGER = (table: string) => `CREATE TRIGGER events_touch BEFORE INSERT ON public.${table} FOR EACH ROW EXECUTE FUNCTION touch()`;

describe('drift between environments', () => {
  const suite = useSuite();

  it('dbchange drift finds a missing regular migration, an extra column and a NOT VALID versus a valid key', async () => {
    const project = await suite.project('driftcli', { environments: [{ name: 'drift-a' }, { name: 'drift-b' }], migrations: POST_DEPLOY });
    const [a, b] = [project.urls['drift-a'], project.urls['drift-b']];
    for (const url of [a, b]) await query(url, SCHEMA);
    const target = { address: '127.0.0.1:1', taskQueue: 'drift-cli', configPath: project.configPath };

    const same = await runCli(target, ['drift', '--json']);
    expect(same.code).toBe(0);
    expect(parseJsonOutput<DriftJson>(same).comparisons.map((comparison) => comparison.differences)).toEqual([[]]);

    await query(a, `INSERT INTO schema_migrations VALUES ('${REGULAR_ONLY_ON_FIRST}'), ('20230109100050')`);
    await query(b, 'ALTER TABLE plan_limits ADD COLUMN web_hook_calls_high int');
    const fk = 'ALTER TABLE ci_runner_machines ADD CONSTRAINT fk_machines_runner FOREIGN KEY (runner_id) REFERENCES ci_runners (id)';
    await query(a, `${fk} NOT VALID`);
    await query(b, fk);

    const drifted = await runCli(target, ['drift', 'drift-a', 'drift-b', '--json']);
    expect(drifted.code).toBe(1);
    const report = parseJsonOutput<DriftJson>(drifted);
    expect(report).toMatchObject({ version: 1, kind: 'drift' });
    expect(report.comparisons[0].regular).toEqual({ onlyInFirst: [REGULAR_ONLY_ON_FIRST], onlyInSecond: [] });
    expect(report.comparisons[0].differences).toEqual([
      `regular migration ${REGULAR_ONLY_ON_FIRST} ran on drift-a but not on drift-b`,
      'post-deploy migration 20230109100050 ran on drift-a but not on drift-b',
      'column public.plan_limits.web_hook_calls_high only on drift-b: integer',
      'constraint public.ci_runner_machines.fk_machines_runner differs: drift-a has FOREIGN KEY (runner_id) REFERENCES ci_runners(id) NOT VALID; drift-b has FOREIGN KEY (runner_id) REFERENCES ci_runners(id)',
    ]);

    const text = await runCli(target, ['drift']);
    expect(text.stdout).toContain('drift-a ↔ drift-b: 4 differences');
    expect((await runCli(target, ['drift', 'drift-a'])).code).toBe(3);
  });

  it('dbchange drift reports an index and a foreign key on a partitioned table once, and a partition that differs on its own line', async () => {
    const project = await suite.project('driftpart', { environments: [{ name: 'driftpart-a' }, { name: 'driftpart-b' }], migrations: POST_DEPLOY });
    const [a, b] = [project.urls['driftpart-a'], project.urls['driftpart-b']];
    for (const url of [a, b]) await query(url, PARTITIONED);
    await query(a, `
      CREATE INDEX index_events_on_project_id ON events (project_id);
      ALTER TABLE events ADD CONSTRAINT fk_events_project FOREIGN KEY (project_id) REFERENCES projects (id) ON DELETE CASCADE;
      ALTER TABLE events_2 DISABLE TRIGGER events_touch;`);
    const target = { address: '127.0.0.1:1', taskQueue: 'drift-partitions', configPath: project.configPath };

    const grouped = parseJsonOutput<DriftJson>(await runCli(target, ['drift', '--json'])).comparisons[0];
    expect(grouped.differences).toEqual([
      'constraint public.events.fk_events_project only on driftpart-a: FOREIGN KEY (project_id) REFERENCES projects(id) ON DELETE CASCADE; and the same on 4 partitions',
      'index public.index_events_on_project_id only on driftpart-a: CREATE INDEX index_events_on_project_id ON ONLY public.events USING btree (project_id); and the same on 4 partitions',
      `trigger public.events_2.events_touch differs: driftpart-a has ${TRIGGER('events_2')} (disabled); driftpart-b has ${TRIGGER('events_2')}`,
    ]);
    expect(grouped.catalog.find((difference) => difference.object === 'index public.index_events_on_project_id')?.partitions).toEqual(
      [0, 1, 2, 3].map((partition) => `index public.events_${partition}_project_id_idx`),
    );

    // The index built partition by partition on b, the way a large table gets one, and interrupted before the last.
    await query(b, `
      CREATE INDEX index_events_on_project_id ON ONLY events (project_id);
      CREATE INDEX events_0_project_id_idx ON events_0 (project_id);
      ALTER INDEX index_events_on_project_id ATTACH PARTITION events_0_project_id_idx;
      CREATE INDEX events_1_project_id_idx ON events_1 (project_id);
      ALTER INDEX index_events_on_project_id ATTACH PARTITION events_1_project_id_idx;
      CREATE INDEX events_2_project_id_idx ON events_2 (project_id);
      ALTER INDEX index_events_on_project_id ATTACH PARTITION events_2_project_id_idx;`);
    const partial = await runCli(target, ['drift']);
    expect(partial.code).toBe(1);
    expect(partial.stdout.split('\n').filter((line) => line.includes('index'))).toEqual([
      '  index public.events_3_project_id_idx only on driftpart-a: CREATE INDEX events_3_project_id_idx ON public.events_3 USING btree (project_id)',
      '  index public.index_events_on_project_id differs: driftpart-a has CREATE INDEX index_events_on_project_id ON ONLY public.events USING btree (project_id); ' +
        'driftpart-b has CREATE INDEX index_events_on_project_id ON ONLY public.events USING btree (project_id) (INVALID)',
    ]);
  });

  it('refuses to promote to an environment whose regular migrations differ, and goes on once they match', async () => {
    const project = await suite.project('driftpipe', { environments: [{ name: 'driftp-staging' }, { name: 'driftp-production' }], migrations: POST_DEPLOY });
    for (const url of Object.values(project.urls)) await query(url, SCHEMA);
    await query(project.urls['driftp-staging'], `INSERT INTO schema_migrations VALUES ('${REGULAR_ONLY_ON_FIRST}')`);
    const handle = await suite.startPipeline(project);
    const blocked = await suite.waitForStage(handle.workflowId, 'blocked');
    expect(blocked.environment).toBe('driftp-production');
    expect(blocked.lastError).toBe(
      `drift: regular migration ${REGULAR_ONLY_ON_FIRST} ran on driftp-staging but not on driftp-production; run the regular migrations on both (or set gates.drift: warn), then retry`,
    );
    expect(await query(project.urls['driftp-production'], `SELECT version FROM schema_migrations ORDER BY version`)).toEqual([{ version: '20230101000000' }]);

    await query(project.urls['driftp-production'], `INSERT INTO schema_migrations VALUES ('${REGULAR_ONLY_ON_FIRST}')`);
    await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'alice', action: 'retry', comment: 'deploy finished on production' });
    const result = await handle.result();
    expect(result.stage).toBe('complete');
    expect(result.results[1].drift).toEqual([]);
  });

  it('with gates.drift: warn, records the drift and promotes anyway', async () => {
    const project = await suite.project('driftwarn', { environments: [{ name: 'driftw-staging' }, { name: 'driftw-production' }], migrations: POST_DEPLOY, drift: 'warn' });
    for (const url of Object.values(project.urls)) await query(url, SCHEMA);
    await query(project.urls['driftw-production'], `INSERT INTO schema_migrations VALUES ('${REGULAR_ONLY_ON_FIRST}')`);
    const result = await (await suite.startPipeline(project)).result();
    expect(result.stage).toBe('complete');
    expect(result.results[1].drift).toEqual([`regular migration ${REGULAR_ONLY_ON_FIRST} ran on driftw-production but not on driftw-staging`]);
  });

  it('replays every history it produced without nondeterminism', async () => {
    expect(await replayWorkflows(suite.stack, suite.workflowIds)).toBe(suite.workflowIds.length);
  });
});
