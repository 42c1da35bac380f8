// Fleet: one rollout of 3 migrations over many targets (schemas in one database; then separate databases) through
// the post-deploy pipeline on one worker process, against the sequential dbmate loop users write today.
import { cpus } from 'node:os';
import { FAST_DISPATCH } from '../worker/dev-server';
import { DEFAULT_MAX_CACHED_WORKFLOWS, DEFAULT_MAX_CONCURRENT_WORKFLOW_TASKS, HEAP_FLAGS } from '../worker/memory-defaults';
import { runDbmateLoop } from './lib/dbmate-loop';
import { FLEET_ENVIRONMENT, FLEET_MIGRATIONS, writeFleetProject } from './lib/fleet-project';
import { runFleetRollout, type RolloutMeasurement } from './lib/fleet-rollout';
import { createDatabaseTargets, createSchemaTargets, type TargetSet } from './lib/fleet-targets';
import type { BenchResult, Goal } from './lib/result';
import type { BenchSettings } from './lib/settings';
import { median, percentile, round } from './lib/stats';
import { startBenchTemporal, type BenchServers } from './lib/temporal';

const RSS_GOAL_MB = 400;
const WARNING_EVENTS = 10_240;
const STATUS_GOAL_MS = 1_000;
const MIGRATIONS = Object.keys(FLEET_MIGRATIONS).length;
/** A rollout slower than this many dbmate loops has failed its goal by far: it is stopped rather than waited for. */
const TIMEOUT_DBMATE_LOOPS = 5;
const MIN_TIMEOUT_MS = 10 * 60_000;

interface Variant {
  method: string;
  count: number;
  createTargets(adminUrl: string, tag: string, count: number): Promise<TargetSet>;
}

interface FleetRun {
  method: string;
  targets: number;
  dbmateWallMs: number;
  dbchange: RolloutMeasurement & { migrated: number };
}

export async function runFleet(settings: BenchSettings, _servers: BenchServers): Promise<BenchResult> {
  const variants: Variant[] = [
    { method: `${settings.fleetTargets} schemas in one database`, count: settings.fleetTargets, createTargets: createSchemaTargets },
    { method: `${settings.fleetDatabases} databases`, count: settings.fleetDatabases, createTargets: createDatabaseTargets },
  ];
  const runs: FleetRun[] = [];
  for (const variant of variants) runs.push(await measure(settings, variant));
  return {
    name: 'fleet',
    title: 'Fleet',
    setup: `${MIGRATIONS} small post-deploy migrations (a table, a column, a second table) rolled out over ${settings.fleetTargets} schemas of one database, then over ${settings.fleetDatabases} separate databases: \`dbchange.yaml\` names a fleet environment (\`source: { file: targets.yaml }\`, waves \`[{count: 1}, {percent: 10}, {percent: 100}]\`, concurrency ${settings.fleetConcurrency}, haltAfterFailures 1) and the post-deploy pipeline (\`pdm-${FLEET_ENVIRONMENT}\`) runs the rollout on one \`dbchange worker\` process with default flags (a cache of ${DEFAULT_MAX_CACHED_WORKFLOWS} workflows, ${DEFAULT_MAX_CONCURRENT_WORKFLOW_TASKS} workflow tasks at once, V8 \`${HEAP_FLAGS.join(' ')}\`), on a \`FAST_DISPATCH\` dev server of its own (see Throughput), so that every workflow run on it belongs to the rollout. Against it, the loop users write today: \`dbmate --url …?search_path=<schema> --migrations-dir … --no-dump-schema up\` once per target, one after another, on the same files. Each tool starts from fresh, empty schemas or databases. Worker RSS from /proc every 500 ms from the pipeline's start to its end, and CPU use (the machine's and the worker's) over the same time; \`pdm status\` (the status query) every ${500} ms while it runs; events counted in the history of every run on the server (the pipeline continues as new as runs fill up). One repetition (a heavy run; \`BENCH_REPS\` does not apply).`,
    reps: 1,
    columns: ['dbchange wall (ms)', 'dbmate loop wall (ms)', 'dbchange / dbmate', 'peak worker RSS (MB)', 'largest run (events)', 'pipeline runs', 'status p50 (ms)', 'status max (ms)'],
    rows: runs.map((run) => ({
      method: run.method,
      medians: {
        'dbchange wall (ms)': round(run.dbchange.wallMs),
        'dbmate loop wall (ms)': round(run.dbmateWallMs),
        'dbchange / dbmate': round(run.dbchange.wallMs / run.dbmateWallMs, 2),
        'peak worker RSS (MB)': round(run.dbchange.peakRssMb),
        'largest run (events)': largestRun(run.dbchange).events,
        'pipeline runs': run.dbchange.pipelineRuns,
        'status p50 (ms)': round(median(run.dbchange.statusMs)),
        'status max (ms)': round(percentile(run.dbchange.statusMs, 100)),
      },
    })),
    goals: runs.flatMap((run) => goals(run, settings.fleetConcurrency)),
    runs: runs.map((run) => ({ ...run, dbchange: { ...run.dbchange, statusMs: run.dbchange.statusMs.map((ms) => round(ms)) } })),
  };
}

/** The dbmate loop, then the dbchange rollout, each on fresh targets of the variant's kind. */
async function measure(settings: BenchSettings, variant: Variant): Promise<FleetRun> {
  const dbmateWallMs = await onFreshTargets(settings, variant, 'mate', async (targets, project) => {
    const wallMs = await runDbmateLoop(targets.targets, project.migrationsDir);
    const migrated = await targets.countMigrated(MIGRATIONS);
    // The baseline must do the whole job, or the comparison means nothing.
    if (migrated !== variant.count) throw new Error(`the dbmate loop migrated ${migrated} of ${variant.count} targets`);
    return wallMs;
  });
  console.error(`fleet (${variant.method}): dbmate loop ${round(dbmateWallMs / 1000, 1)} s`);
  const dbchange = await onFreshTargets(settings, variant, 'dbc', async (targets, project) => {
    const temporal = await startBenchTemporal(FAST_DISPATCH);
    try {
      const rollout = await runFleetRollout(temporal, project, Math.max(MIN_TIMEOUT_MS, TIMEOUT_DBMATE_LOOPS * dbmateWallMs));
      return { ...rollout, migrated: await targets.countMigrated(MIGRATIONS) };
    } finally {
      await temporal.close();
    }
  });
  const largest = largestRun(dbchange);
  console.error(
    `fleet (${variant.method}): dbchange ${dbchange.stage}, ${dbchange.migrated} of ${variant.count} migrated in ${round(dbchange.wallMs / 1000, 1)} s; peak RSS ${round(dbchange.peakRssMb)} MB; ${dbchange.runs.length} runs, largest ${largest.events} events (${largest.workflowId}); status p50 ${round(median(dbchange.statusMs))} ms, max ${round(percentile(dbchange.statusMs, 100))} ms, ${dbchange.statusFailures} failed`,
  );
  return { method: variant.method, targets: variant.count, dbmateWallMs, dbchange };
}

async function onFreshTargets<T>(settings: BenchSettings, variant: Variant, tag: string, work: (targets: TargetSet, project: ReturnType<typeof writeFleetProject>) => Promise<T>): Promise<T> {
  const targets = await variant.createTargets(settings.adminUrl, tag, variant.count);
  const project = writeFleetProject(targets.targets, settings.fleetConcurrency);
  try {
    return await work(targets, project);
  } finally {
    project.cleanup();
    await targets.drop();
  }
}

function largestRun(rollout: RolloutMeasurement): RolloutMeasurement['runs'][number] {
  return rollout.runs.reduce((largest, run) => (run.events > largest.events ? run : largest), { workflowId: 'none', runId: '', events: 0 });
}

/** The issue's goals for one variant, each with what limits it in this run's own numbers. */
function goals(run: FleetRun, concurrency: number): Goal[] {
  const { dbchange, dbmateWallMs, targets, method } = run;
  const largest = largestRun(dbchange);
  const statusMax = percentile(dbchange.statusMs, 100);
  const perTarget = (ms: number) => round(ms / targets, 1);
  return [
    {
      goal: `the rollout completes (${method})`,
      measured: `${dbchange.stage}; ${dbchange.migrated} of ${targets} targets migrated (waves done: ${dbchange.waves.map((wave) => `${wave.done}/${wave.size}`).join(', ') || 'none'})`,
      met: dbchange.stage === 'complete' && dbchange.migrated === targets,
      limitedBy: `${targets - dbchange.migrated} targets without all ${MIGRATIONS} migrations; the pipeline ended ${dbchange.stage}${dbchange.summary ? `: ${dbchange.summary}` : ''}`,
    },
    {
      goal: `wall time ≤ the sequential dbmate loop (${method})`,
      measured: `${round(dbchange.wallMs / 1000, 1)} s vs ${round(dbmateWallMs / 1000, 1)} s (${round(dbchange.wallMs / dbmateWallMs, 2)}×)`,
      met: dbchange.wallMs <= dbmateWallMs,
      limitedBy: `${perTarget(dbchange.wallMs)} ms of rollout per target with ${concurrency} at once, against ${perTarget(dbmateWallMs)} ms per target for dbmate one at a time (each dbchange target also takes its applier lock, runs prechecks and writes a ledger row per migration); the machine's ${cpus().length} cores were ${round(dbchange.cpu.machineBusyPercent)}% busy during the rollout, the worker using ${round(dbchange.cpu.processCores, 2)} of a core and PostgreSQL, the Temporal server and anything else on the machine the rest`,
    },
    {
      goal: `worker RSS ≤ ${RSS_GOAL_MB} MB (${method})`,
      measured: `${round(dbchange.peakRssMb)} MB peak (${round(dbchange.idleRssMb)} MB idle)`,
      met: dbchange.peakRssMb <= RSS_GOAL_MB,
      limitedBy: `the idle worker's own ${round(dbchange.idleRssMb)} MB, then ${round(dbchange.peakRssMb - dbchange.idleRssMb)} MB more during the rollout`,
    },
    {
      goal: `no workflow run passes ${WARNING_EVENTS} events (${method})`,
      measured: `${dbchange.runs.length} run${dbchange.runs.length === 1 ? '' : 's'} (${dbchange.pipelineRuns} of the pipeline), the largest ${largest.events} events (${largest.workflowId})`,
      met: largest.events <= WARNING_EVENTS,
      limitedBy: `${dbchange.runs.filter((one) => one.events > WARNING_EVENTS).length} runs over the limit, the largest ${largest.workflowId} with ${largest.events} events`,
    },
    {
      goal: `\`pdm status\` answers within 1 s during the rollout (${method})`,
      measured: `p50 ${round(median(dbchange.statusMs))} ms, p99 ${round(percentile(dbchange.statusMs, 99))} ms, max ${round(statusMax)} ms over ${dbchange.statusMs.length} queries; ${dbchange.statusFailures} unanswered`,
      met: statusMax <= STATUS_GOAL_MS && dbchange.statusFailures === 0,
      limitedBy: `${dbchange.statusMs.filter((ms) => ms > STATUS_GOAL_MS).length} queries over 1 s and ${dbchange.statusFailures} unanswered, while one worker ran the rollout's workflow tasks`,
    },
  ];
}
