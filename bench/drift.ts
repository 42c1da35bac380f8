// Drift: `dbchange drift`'s catalog comparison between two copies of a GitLab-sized schema, one with planted differences.
import { driftBetween } from '../activities/drift';
import { DatabasePools } from '../activities/db';
import { describeDrift } from '../core/drift';
import { createDatabase, withClient, writeProjectOf, type BenchDatabase } from './lib/databases';
import { gitlabSizedSchema, PLANTED_DIFFERENCES } from './lib/gitlab-sized-schema';
import type { BenchResult } from './lib/result';
import type { BenchSettings } from './lib/settings';
import { median, round } from './lib/stats';

/** GitLab's real schema took about 1 s per comparison before partitions were grouped. */
const GOAL_MS = 1_500;
const METHOD = 'dbchange drift (both catalogs read, compared, described)';

interface Run {
  rep: number;
  wallMs: number;
  lines: number;
}

export async function runDrift(settings: BenchSettings): Promise<BenchResult> {
  const first = await createDatabase(settings.adminUrl, 'drift');
  let second: BenchDatabase | undefined;
  try {
    const built = performance.now();
    await withClient(first.url, (client) => client.query(gitlabSizedSchema()));
    second = await cloneDatabase(settings.adminUrl, first);
    await withClient(second.url, (client) => client.query(PLANTED_DIFFERENCES.map((planted) => planted.sql).join('\n')));
    const size = await countObjects(first.url);
    console.error(`drift: schema built and copied in ${round((performance.now() - built) / 1000, 1)} s: ${JSON.stringify(size)}`);

    const project = writeProjectOf({ 'drift-a': first.url, 'drift-b': second.url }, {});
    const runs: Run[] = [];
    let lines: string[] = [];
    try {
      for (let rep = 1; rep <= settings.reps; rep++) {
        // New connections each time, as each `dbchange drift` opens them: a new backend reads the catalog cold.
        const pools = new DatabasePools();
        const started = performance.now();
        try {
          lines = describeDrift(await driftBetween(project.config, pools, 'drift-a', 'drift-b'));
        } finally {
          await pools.close();
        }
        const wallMs = round(performance.now() - started);
        runs.push({ rep, wallMs, lines: lines.length });
        console.error(`drift: rep ${rep}: ${wallMs} ms, ${lines.length} lines`);
      }
    } finally {
      project.cleanup();
    }
    const missed = PLANTED_DIFFERENCES.filter((planted) => !lines.some((line) => line.startsWith(`${planted.object} `)));
    const wallMs = median(runs.map((run) => run.wallMs));
    return {
      name: 'drift',
      title: 'Drift on a GitLab-sized schema',
      setup:
        `Two databases with a generated schema the size of GitLab's db/structure.sql (${size.tables} tables of which ${size.partitioned} partitioned and ${size.partitions} partitions, ` +
        `${size.indexes} indexes, ${size.constraints} constraints, ${size.triggers} triggers, ${size.columns} columns); the second has ${PLANTED_DIFFERENCES.length} planted differences: ` +
        'a dropped column, an added index, a foreign key made NOT VALID, a dropped trigger, a changed default, an INVALID index, and one CREATE INDEX on a table of 64 hash partitions. ' +
        'Timed: `driftBetween` on new connections (both catalogs read at once, compared) and the description of its lines, in the bench process.',
      reps: settings.reps,
      columns: ['comparison (ms)', 'drift lines'],
      rows: [{ method: METHOD, medians: { 'comparison (ms)': wallMs, 'drift lines': median(runs.map((run) => run.lines)) } }],
      goals: [
        { goal: `comparison ≤ ${GOAL_MS} ms`, measured: `${wallMs} ms`, met: wallMs <= GOAL_MS },
        {
          goal: `one line per planted difference (${PLANTED_DIFFERENCES.length})`,
          measured: `${lines.length} lines${missed.length > 0 ? `, missing ${missed.map((planted) => planted.object).join(', ')}` : ''}`,
          met: lines.length === PLANTED_DIFFERENCES.length && missed.length === 0,
        },
      ],
      runs: [...runs, { lines }],
    };
  } finally {
    await second?.drop();
    await first.drop();
  }
}

/** A copy made by PostgreSQL from `template`: seconds, where building the schema again takes much longer. */
async function cloneDatabase(adminUrl: string, template: BenchDatabase): Promise<BenchDatabase> {
  const name = `${template.name}_copy`;
  await withClient(adminUrl, (client) => client.query(`CREATE DATABASE ${name} TEMPLATE ${template.name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { name, url: url.toString(), drop: () => withClient(adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined) };
}

async function countObjects(url: string): Promise<Record<'tables' | 'partitioned' | 'partitions' | 'indexes' | 'constraints' | 'triggers' | 'columns', number>> {
  const sql = `
    SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p'))::int AS tables,
           (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'p')::int AS partitioned,
           (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relispartition AND c.relkind = 'r')::int AS partitions,
           (SELECT count(*) FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public')::int AS indexes,
           (SELECT count(*) FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace WHERE n.nspname = 'public')::int AS constraints,
           (SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND NOT t.tgisinternal)::int AS triggers,
           (SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped)::int AS columns`;
  return withClient(url, async (client) => (await client.query(sql)).rows[0]);
}
