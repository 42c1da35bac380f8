// Throughput: many small post-deploy migrations into one database: dbchange vs dbmate vs a psql loop.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startPipeline } from '../cli/pipeline-client';
import { REPO_ROOT } from './lib/paths';
import { createDatabase, migrationText, versionAt, withClient, writeProject, type BenchProject } from './lib/databases';
import type { BenchResult } from './lib/result';
import type { BenchSettings } from './lib/settings';
import { median, round } from './lib/stats';
import type { BenchServers, BenchTemporal } from './lib/temporal';

const DBCHANGE = 'dbchange pipeline';
const DBCHANGE_FAST = 'dbchange pipeline, fast dispatch';
const METHODS = [DBCHANGE, DBCHANGE_FAST, 'dbmate up', 'psql loop'] as const;
type Method = (typeof METHODS)[number];
type DbchangeMethod = typeof DBCHANGE | typeof DBCHANGE_FAST;
const DBMATE = join(REPO_ROOT, 'node_modules/.bin/dbmate');

interface Run {
  method: Method;
  rep: number;
  wallMs: number;
  applied: number;
  /** dbchange only: migrations the batches in the history report settled (each named in its batch's summary). */
  activitiesInHistory?: number;
  /** dbchange only: applyMigrations activities (batches) in the history. */
  batches?: number;
  /** dbchange only: where the time went, per migration, from the history's event times. */
  perMigration?: TimeBreakdown;
}

/** Median milliseconds per migration inside each activity; the rest of the wall time is orchestration. */
interface TimeBreakdown {
  /** The plan's lint: one squawk run over every file. */
  lintMs: number;
  /** Time inside the batch activities (prechecks, applier lock, ledger row, the SQL), per migration. */
  applyMs: number;
  /** Median wait of a scheduled task (workflow task or activity) for the server to hand it to the waiting worker. */
  dispatchMs: number;
}

export async function runThroughput(settings: BenchSettings, servers: BenchServers): Promise<BenchResult> {
  const runs: Run[] = [];
  for (let rep = 1; rep <= settings.reps; rep++) {
    for (const method of METHODS) {
      const run = await measure(method, rep, settings, servers);
      runs.push(run);
      console.error(`throughput: ${method} rep ${rep}: ${settings.migrations} migrations in ${run.wallMs} ms${run.batches !== undefined ? `, ${run.batches} batches settling ${run.activitiesInHistory}` : ''}`);
    }
  }
  const medianOf = (method: Method) => median(runs.filter((run) => run.method === method).map((run) => run.wallMs));
  const rows = METHODS.map((method) => ({
    method,
    medians: { 'wall time (ms)': round(medianOf(method)), 'per migration (ms)': round(medianOf(method) / settings.migrations, 1) },
  }));
  const dbmateMs = medianOf('dbmate up');
  const dbchangeRuns = runs.filter((run) => run.method === DBCHANGE || run.method === DBCHANGE_FAST);
  const everyOneVisible = dbchangeRuns.every((run) => run.activitiesInHistory === settings.migrations);
  /** One goal line per server: the 1.5× goal, and where dbchange's time per migration went. */
  const ratioGoal = (method: DbchangeMethod, server: string) => {
    const ratio = medianOf(method) / dbmateMs;
    const breakdowns = runs.flatMap((run) => (run.method === method && run.perMigration ? [run.perMigration] : []));
    const lintMs = median(breakdowns.map((breakdown) => breakdown.lintMs));
    const applyMs = median(breakdowns.map((breakdown) => breakdown.applyMs));
    const batches = median(runs.flatMap((run) => (run.method === method && run.batches !== undefined ? [run.batches] : [])));
    const dispatchMs = median(breakdowns.map((breakdown) => breakdown.dispatchMs));
    const perMigrationMs = medianOf(method) / settings.migrations;
    return {
      goal: `dbchange ≤ 1.5× dbmate wall time (${server})`,
      measured: `${round(ratio, 2)}×`,
      met: ratio <= 1.5,
      limitedBy: `the work per migration, now that orchestration is per batch (${batches} batches): per migration ${round(perMigrationMs, 1)} ms, of which ${round(applyMs, 1)} ms inside the batches (the read-only prechecks, the applier lock, the ledger row and the SQL, each in its own transaction), ${round(lintMs / settings.migrations, 1)} ms of the plan's one lint run (${round(lintMs)} ms), and ${round(perMigrationMs - applyMs - lintMs / settings.migrations, 1)} ms for starting the pipeline, listing, and the tasks between activities (each waited ${round(dispatchMs, 1)} ms to be handed to the worker). dbmate runs everything in one process and one connection without prechecks or a ledger: ${round(dbmateMs / settings.migrations, 1)} ms per migration`,
    };
  };
  return {
    name: 'throughput',
    title: 'Throughput',
    setup: `${settings.migrations} post-deploy migrations (each \`CREATE TABLE\` + \`INSERT\`) into one fresh database per run; dbchange through the real pipeline (the plan linted once, then batches of migrations, one activity each, every migration with its prechecks, transaction and ledger row), on a local dev server as it comes and on one started with \`FAST_DISPATCH\` (worker/dev-server.ts: \`history.transferProcessorMaxPollRPS=1000\`, \`system.enableActivityEagerExecution=true\`). The dev server reads its task queue at most 20 times a second by default, so a workflow that runs one activity after another waits about 40 ms for each task.`,
    reps: settings.reps,
    columns: Object.keys(rows[0].medians),
    rows,
    goals: [
      ratioGoal(DBCHANGE, 'dev server defaults'),
      ratioGoal(DBCHANGE_FAST, 'fast dispatch'),
      {
        goal: 'every migration visible in the Temporal UI (each batch names its files; the batches settled every one)',
        measured: everyOneVisible ? `${settings.migrations} of ${settings.migrations} in every run` : 'missing in some run',
        met: everyOneVisible,
      },
    ],
    runs,
  };
}

async function measure(method: Method, rep: number, settings: BenchSettings, servers: BenchServers): Promise<Run> {
  const database = await createDatabase(settings.adminUrl, 'tput');
  const project = writeProject('bench-tput', database.url, smallMigrations(settings.migrations));
  try {
    const started = performance.now();
    let activitiesInHistory: number | undefined;
    let batches: number | undefined;
    let perMigration: TimeBreakdown | undefined;
    if (method === DBCHANGE) ({ activitiesInHistory, batches, perMigration } = await applyWithDbchange(project, servers.standard));
    else if (method === DBCHANGE_FAST) ({ activitiesInHistory, batches, perMigration } = await applyWithDbchange(project, servers.fast));
    else if (method === 'dbmate up') await run(DBMATE, ['--url', withSslDisabled(database.url), '--migrations-dir', project.migrationsDir, '--no-dump-schema', 'up']);
    else await applyWithPsqlLoop(project, database.url);
    const wallMs = round(performance.now() - started);
    const applied = await withClient(database.url, async (client) => Number((await client.query('SELECT count(*) AS n FROM schema_migrations')).rows[0].n));
    if (applied !== settings.migrations) throw new Error(`${method} applied ${applied} of ${settings.migrations} migrations`);
    return { method, rep, wallMs, applied, activitiesInHistory, batches, perMigration };
  } finally {
    project.cleanup();
    await database.drop();
  }
}

/** `count` small migrations: each creates a table and inserts a row. */
export function smallMigrations(count: number): Record<string, string> {
  return Object.fromEntries(
    Array.from({ length: count }, (_, index) => [
      `${versionAt(index)}_step_${index}.sql`,
      migrationText(`CREATE TABLE step_${index} (id int PRIMARY KEY);\nINSERT INTO step_${index} VALUES (1);`),
    ]),
  );
}

/** Runs the project's pipeline to the end on a worker of its own; what the history says about where the time went. */
export async function applyWithDbchange(project: BenchProject, temporal: Pick<BenchTemporal, 'client' | 'startWorker'>): Promise<{ activitiesInHistory: number; batches: number; perMigration: TimeBreakdown }> {
  const worker = await temporal.startWorker(project.config);
  try {
    const handle = await startPipeline(temporal.client, project.config, { requestedBy: 'bench', taskQueue: worker.taskQueue });
    const result = await handle.result();
    if (result.stage !== 'complete') throw new Error(`dbchange pipeline ended ${result.stage}: ${result.summary}`);
    const events = (await handle.fetchHistory()).events ?? [];
    const batchResults = completedResults(events, 'applyMigrations') as { outcomes: unknown[] }[];
    const migrations = batchResults.reduce((sum, batch) => sum + batch.outcomes.length, 0);
    return {
      activitiesInHistory: migrations,
      batches: batchResults.length,
      perMigration: { lintMs: totalActivityMs(events, 'lintPlan'), applyMs: totalActivityMs(events, 'applyMigrations') / Math.max(migrations, 1), dispatchMs: medianDispatchMs(events) },
    };
  } finally {
    await worker.stop();
  }
}

type HistoryEvent = NonNullable<Awaited<ReturnType<Awaited<ReturnType<typeof startPipeline>>['fetchHistory']>>['events']>[number];

const at = (event: HistoryEvent) => Number(event.eventTime?.seconds ?? 0) * 1_000 + (event.eventTime?.nanos ?? 0) / 1e6;
const byEventId = (events: HistoryEvent[]) => new Map(events.map((event) => [String(event.eventId), event]));

/** Each completed activity of one type, with its start and end events. */
function completedActivities(events: HistoryEvent[], activityType: string): { started: HistoryEvent; completed: HistoryEvent }[] {
  const byId = byEventId(events);
  return events.flatMap((event) => {
    const completed = event.activityTaskCompletedEventAttributes;
    if (!completed) return [];
    const scheduled = byId.get(String(completed.scheduledEventId));
    const started = byId.get(String(completed.startedEventId));
    return scheduled?.activityTaskScheduledEventAttributes?.activityType?.name === activityType && started ? [{ started, completed: event }] : [];
  });
}

/** Total time from start to completion of every activity of one type, from the history's event times. */
function totalActivityMs(events: HistoryEvent[], activityType: string): number {
  return round(completedActivities(events, activityType).reduce((sum, { started, completed }) => sum + at(completed) - at(started), 0), 1);
}

function completedResults(events: HistoryEvent[], activityType: string): unknown[] {
  return completedActivities(events, activityType).map(({ completed }) => {
    const data = completed.activityTaskCompletedEventAttributes?.result?.payloads?.[0]?.data;
    return JSON.parse(Buffer.from(data ?? new Uint8Array()).toString('utf8'));
  });
}

/** Median time from a task being scheduled to a worker starting it, over every workflow task and activity. */
function medianDispatchMs(events: HistoryEvent[]): number {
  const byId = byEventId(events);
  const waits = events.flatMap((event) => {
    const scheduledId = event.workflowTaskStartedEventAttributes?.scheduledEventId ?? event.activityTaskStartedEventAttributes?.scheduledEventId;
    const scheduled = scheduledId === undefined || scheduledId === null ? undefined : byId.get(String(scheduledId));
    return scheduled ? [at(event) - at(scheduled)] : [];
  });
  return round(median(waits), 1);
}

/** What a release manager's shell loop does: one psql per file, its up section and its version row in one transaction. */
async function applyWithPsqlLoop(project: BenchProject, url: string): Promise<void> {
  await run('psql', [url, '-q', '-v', 'ON_ERROR_STOP=1', '-c', 'CREATE TABLE IF NOT EXISTS schema_migrations (version varchar PRIMARY KEY)']);
  for (const fileName of readdirSync(project.migrationsDir).sort()) {
    const up = readFileSync(join(project.migrationsDir, fileName), 'utf8').split('-- migrate:down')[0].replace('-- migrate:up', '');
    const version = fileName.slice(0, 14);
    await run('psql', [url, '-q', '-v', 'ON_ERROR_STOP=1', '-1', '-c', `${up}\nINSERT INTO schema_migrations (version) VALUES ('${version}');`]);
  }
}

function withSslDisabled(url: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('sslmode', 'disable');
  return parsed.toString();
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited ${code}: ${stderr.slice(-1_000)}`))));
  });
}
