// Environments made of several databases (GitLab's main and ci): each database has its own schema_migrations,
// ledger, prechecks and drift; a migration restricted to some databases is recorded as skipped on the others.
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { PipelineStatus } from '../../core/pipeline';
import { query } from '../helpers/postgres';
import { assertBuilt, parseJsonOutput, runCli, type CliTarget } from '../helpers/processes';
import { migration, type ProjectSpec } from '../helpers/project';
import { replayWorkflows } from '../helpers/stack';
import { useSuite } from '../helpers/suite';

const WIDGETS = '20240701000001_create_widgets.sql';
const CI_BUILDS = '20240701000002_backfill_ci_builds.sql';
const DECOMPOSED = (prefix: string) => [
  { name: `${prefix}-staging`, databases: ['main', 'ci'] },
  { name: `${prefix}-production`, databases: ['main', 'ci'] },
];
/** A data migration of the ci schema: it runs on ci only, as GitLab's restrict_gitlab_migration does. */
const CI_ONLY = `-- dbchange:databases ci\n${migration('CREATE TABLE ci_builds_backfilled (id bigint PRIMARY KEY);')}`;

describe('environments of several databases', () => {
  const suite = useSuite();

  async function cliProject(prefix: string, spec: Pick<ProjectSpec, 'environments' | 'migrations'>) {
    assertBuilt();
    const project = await suite.project(prefix, spec);
    const taskQueue = suite.stack.newTaskQueue();
    await suite.stack.startWorker(project.config, taskQueue);
    const target: CliTarget = { address: suite.stack.address, taskQueue, configPath: project.configPath };
    const cli = (...args: string[]) => runCli(target, args, { timeoutMs: 60_000 });
    return { project, cli };
  }

  /** Starts a pipeline from the CLI; `result()` waits for its end. */
  async function execute(cli: (...args: string[]) => ReturnType<typeof runCli>): Promise<{ workflowId: string; result: () => Promise<PipelineStatus> }> {
    const started = await cli('pdm', 'execute', '--as', 'dave', '--json');
    expect(started.code, started.stderr).toBe(0);
    const { workflowId, runId } = parseJsonOutput<{ workflowId: string; runId: string }>(started);
    suite.workflowIds.push(workflowId);
    return { workflowId, result: () => suite.stack.client.workflow.getHandle(workflowId, runId).result() };
  }

  it('runs a migration on every database of each environment, records a ci-only one as skipped on main, and shows each database', async () => {
    const { project, cli } = await cliProject('dbs', { environments: DECOMPOSED('dbs'), migrations: { [WIDGETS]: migration('CREATE TABLE widgets (id bigint PRIMARY KEY);'), [CI_BUILDS]: CI_ONLY } });

    const before = parseJsonOutput<{ environments: { environment: string; database: string; pending: unknown[] }[] }>(await cli('migrations', 'pending', '--json'));
    expect(before.environments.map((entry) => [entry.environment, entry.database, entry.pending.length])).toEqual([
      ['dbs-staging/main', 'main', 2],
      ['dbs-staging/ci', 'ci', 2],
      ['dbs-production/main', 'main', 2],
      ['dbs-production/ci', 'ci', 2],
    ]);

    const { workflowId, result } = await execute(cli);
    const final = await result();
    expect(final.stage).toBe('complete');
    for (const environment of ['dbs-staging', 'dbs-production']) {
      const record = final.results.find((item) => item.environment === environment)!;
      expect(record.counts).toMatchObject({ applied: 3, skipped: 1 });
      expect(record.databases?.map((item) => [item.database, item.counts.applied, item.counts.skipped])).toEqual([
        ['main', 1, 1],
        ['ci', 2, 0],
      ]);
      const main = project.urls[`${environment}/main`];
      const ci = project.urls[`${environment}/ci`];
      // Each database keeps its own schema_migrations and ledger; the skipped migration ran only on ci.
      for (const url of [main, ci]) expect(await query(url, 'SELECT version FROM schema_migrations ORDER BY version')).toEqual([{ version: '20240701000001' }, { version: '20240701000002' }]);
      expect(await query(main, `SELECT to_regclass('ci_builds_backfilled') IS NULL AS absent, to_regclass('widgets') IS NULL AS widgets_absent`)).toEqual([{ absent: true, widgets_absent: false }]);
      expect(await query(ci, `SELECT to_regclass('ci_builds_backfilled') IS NULL AS absent`)).toEqual([{ absent: false }]);
      expect(await query(main, `SELECT version, outcome FROM dbchange_migration_log ORDER BY version`)).toEqual([
        { version: '20240701000001', outcome: 'applied' },
        { version: '20240701000002', outcome: 'skipped' },
      ]);
      expect(await query(ci, `SELECT outcome FROM dbchange_migration_log ORDER BY version`)).toEqual([{ outcome: 'applied' }, { outcome: 'applied' }]);
    }

    const status = await cli('pdm', 'status', workflowId);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain('  dbs-staging: 3 applied, 1 skipped\n    main: 1 applied, 1 skipped\n');
    expect(status.stdout).toContain('      20240701000002_backfill_ci_builds: skipped in 0 ms (runs only on ci)\n    ci: 2 applied\n');

    const where = parseJsonOutput<{ environments: { environment: string; outcome: string }[] }>(await cli('migrations', 'status', '20240701000002', '--json'));
    expect(where.environments.map((entry) => `${entry.environment} ${entry.outcome}`)).toEqual([
      'dbs-staging/main skipped',
      'dbs-staging/ci applied',
      'dbs-production/main skipped',
      'dbs-production/ci applied',
    ]);
    const drift = await cli('drift', '--json');
    expect(drift.code, drift.stdout).toBe(0);
    const comparisons = parseJsonOutput<{ comparisons: { first: string; second: string }[] }>(drift).comparisons;
    expect(comparisons.map((item) => `${item.first} ↔ ${item.second}`)).toEqual(['dbs-staging/main ↔ dbs-production/main', 'dbs-staging/ci ↔ dbs-production/ci']);
  });

  it('runs the prechecks of each database on that database: orphans on ci block there, after main was applied', async () => {
    const parentChild = 'CREATE TABLE parents (id bigint PRIMARY KEY); CREATE TABLE children (id bigint PRIMARY KEY, parent_id bigint)';
    const addKey = '20240701000003_add_children_parent_fk.sql';
    const { project, cli } = await cliProject('dbpre', {
      environments: [{ name: 'dbpre-staging', databases: ['main', 'ci'] }],
      migrations: { [addKey]: migration('ALTER TABLE children ADD CONSTRAINT children_parent_fk FOREIGN KEY (parent_id) REFERENCES parents (id) NOT VALID;') },
    });
    for (const url of Object.values(project.urls)) await query(url, parentChild);
    await query(project.urls['dbpre-staging/ci'], 'INSERT INTO children VALUES (1, 42)');

    const { workflowId } = await execute(cli);
    const blocked = await suite.waitForStage(workflowId, 'blocked');
    expect(blocked.environment).toBe('dbpre-staging/ci');
    expect(blocked.lastError).toMatch(/^prechecks block 20240701000003_add_children_parent_fk\.sql: .*1 row/);
    expect(blocked.results[0].databases?.map((item) => [item.database, item.counts.applied])).toEqual([['main', 1], ['ci', 0]]);
    expect(await query(project.urls['dbpre-staging/main'], `SELECT conname FROM pg_constraint WHERE conname = 'children_parent_fk'`)).toHaveLength(1);
    expect(await query(project.urls['dbpre-staging/ci'], `SELECT conname FROM pg_constraint WHERE conname = 'children_parent_fk'`)).toHaveLength(0);
    const aborted = await cli('resolve', workflowId, '--as', 'alice', '--action', 'abort');
    expect(aborted.code, aborted.stderr).toBe(0);
  });

  it('blocks on a header that names a database the environment lacks, naming the file and its databases', async () => {
    const typo = '20240701000004_backfill_typo.sql';
    const { project, cli } = await cliProject('dbtypo', {
      environments: [{ name: 'dbtypo-staging', databases: ['main', 'ci'] }],
      migrations: { [typo]: `-- dbchange:databases cii\n${migration('SELECT 1;')}` },
    });
    const { workflowId } = await execute(cli);
    const blocked = await suite.waitForStage(workflowId, 'blocked');
    expect(blocked.lastError).toContain(`${typo}: -- dbchange:databases names cii, which environment dbtypo-staging does not have (its databases: main, ci); fix the header`);
    for (const url of Object.values(project.urls)) expect(await query(url, `SELECT to_regclass('schema_migrations') IS NULL AS untouched`)).toEqual([{ untouched: true }]);
    expect((await cli('resolve', workflowId, '--as', 'alice', '--action', 'abort')).code).toBe(0);
  });

  it('runs a change request step on the database it names; cr validate refuses a step without one', async () => {
    const { project, cli } = await cliProject('dbcr', { environments: [{ name: 'dbcr-staging', databases: ['main', 'ci'] }], migrations: {} });
    const unnamed = `${project.dir}/unnamed.yaml`;
    const named = `${project.dir}/named.yaml`;
    const changeRequest = (database: string) =>
      [
        'id: make-ci-table',
        'title: A table on the ci database',
        'criticality: C4',
        'requestedBy: dave',
        'environments: [dbcr-staging]',
        'steps:',
        '  - id: make',
        database,
        '    sql: CREATE TABLE cr_made (id int);',
        '  - id: made',
        '    database: ci',
        "    check: SELECT 1 FROM pg_class WHERE relname = 'cr_made'",
        '    expect: { rows: 1 }',
        '',
      ].join('\n');
    writeFileSync(unnamed, changeRequest('    description: no database named'));
    writeFileSync(named, changeRequest('    database: ci'));

    const refused = await cli('cr', 'validate', unnamed);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('line 7: steps.make: environment dbcr-staging has several databases; set database: to one of main, ci');

    const started = await cli('cr', 'execute', named, '--follow');
    expect(started.code, started.stderr + started.stdout).toBe(0);
    suite.workflowIds.push('cr-make-ci-table');
    expect(await query(project.urls['dbcr-staging/ci'], `SELECT to_regclass('cr_made') IS NOT NULL AS made`)).toEqual([{ made: true }]);
    expect(await query(project.urls['dbcr-staging/main'], `SELECT to_regclass('cr_made') IS NOT NULL AS made`)).toEqual([{ made: false }]);
  });

  it('replays every workflow of this file without nondeterminism', async () => {
    expect(await replayWorkflows(suite.stack, suite.workflowIds)).toBe(suite.workflowIds.length);
  });
});
