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
  comparisons: { first: string; second: string; regular: { onlyInFirst: string[]; onlyInSecond: string[] }; differences: string[] }[];
}

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
