// Fleets under faults on the real stack: worker processes SIGKILLed while a wave runs (no migration may run twice
// on any target), and a registry whose query fails (the rollout blocks at listing, before any target starts).
import { afterAll, describe, expect, it } from 'vitest';
import { pipelineStatus, sendDecision, startPipeline } from '../../cli/pipeline-client';
import type { PipelineStatus } from '../../core/pipeline';
import { createFleetProject, schemaOf, type FleetProject } from '../helpers/fleet';
import { query } from '../helpers/postgres';
import { assertBuilt, stopWorkerProcesses, type CliTarget, type WorkerProcess } from '../helpers/processes';
import { migration } from '../helpers/project';
import { eventually, replayWorkflows } from '../helpers/stack';
import { useSuite } from '../helpers/suite';
import { sleep, startPrebundledWorker, writeBundle } from './fault-helpers';

const TARGET_COUNT = 40;
const CONCURRENCY = 8;
const STEP_SLEEP_S = 0.15;
const VERSIONS = ['20240901000001', '20240901000002', '20240901000003'];
/** Each migration writes its side-effect row and sleeps in one transaction: a second run would leave a second row. */
const MIGRATIONS = Object.fromEntries(
  VERSIONS.map((version) => [
    `${version}_fleet_step.sql`,
    migration(`INSERT INTO applied_log (version) VALUES ('${version}');\nSELECT pg_sleep(${STEP_SLEEP_S});\nCREATE TABLE fleet_step_${version} (id int);`),
  ]),
);
const KILLS = 2;
/** How long to wait for a live worker to have a target in flight before killing either one. */
const MAX_WAIT_FOR_ACTIVITY_MS = 5_000;

const names = (prefix: string, count: number) => Array.from({ length: count }, (_, index) => `${prefix}-${String(index + 1).padStart(2, '0')}`);

describe('fleet rollouts under faults', () => {
  const suite = useSuite();
  const projects: FleetProject[] = [];
  const workers: WorkerProcess[] = [];
  afterAll(async () => {
    await stopWorkerProcesses(workers, 5_000);
    await Promise.all(projects.map((project) => project.cleanup()));
  });

  const status = (workflowId: string) => pipelineStatus(suite.stack.client, workflowId);
  const waitFor = (workflowId: string, what: string, check: (snapshot: PipelineStatus) => boolean, timeoutMs = 60_000) =>
    eventually(async () => {
      const snapshot = await status(workflowId);
      return check(snapshot) && snapshot;
    }, `${workflowId}: ${what}`, timeoutMs);

  it('Two worker processes share a rollout; one is SIGKILLed twice mid-wave: no migration is applied twice on any target', { timeout: 150_000 }, async () => {
    assertBuilt();
    const targets = names('kcell', TARGET_COUNT);
    const project = await createFleetProject('fleetkill', { environment: 'killcells', targets, migrations: MIGRATIONS, waves: '[{count: 1}, {percent: 100}]', concurrency: CONCURRENCY, haltAfterFailures: 1 });
    projects.push(project);
    for (const target of targets) {
      await query(project.url, `CREATE TABLE ${schemaOf(target)}.applied_log (id serial PRIMARY KEY, version text NOT NULL, started_at timestamptz NOT NULL DEFAULT clock_timestamp())`);
    }

    const cli: CliTarget = { address: suite.stack.address, taskQueue: suite.stack.newTaskQueue(), configPath: project.configPath };
    const bundle = writeBundle(suite.stack);
    const live: WorkerProcess[] = await Promise.all([startPrebundledWorker(cli, bundle), startPrebundledWorker(cli, bundle)]);
    workers.push(...live);
    const started = Date.now();
    const handle = await startPipeline(suite.stack.client, project.config, { requestedBy: 'dave', taskQueue: cli.taskQueue });
    suite.workflowIds.push(handle.workflowId);
    const result = handle.result();
    result.catch(() => undefined); // awaited below

    /** Live workers that have a target's activity started (by the pid in their identity). */
    const inFlight = async () => {
      const description = await handle.describe();
      const pids = new Set(
        (description.raw.pendingActivities ?? [])
          .filter((activity) => activity.activityType?.name === 'rollOutTarget' && activity.lastStartedTime)
          .map((activity) => Number.parseInt(activity.lastWorkerIdentity ?? '', 10)),
      );
      return live.filter((worker) => pids.has(worker.pid));
    };

    let killsInFlight = 0;
    let doneAtLastKill = 0;
    for (let kill = 1; kill <= KILLS; kill++) {
      // Wave 2 runs, and has finished some targets since the last kill.
      const snapshot = await waitFor(handle.workflowId, `wave 2 running before kill ${kill}`, (current) => {
        const wave = current.results[0]?.fleet?.waves[1];
        return !!wave && wave.running > 0 && wave.done > doneAtLastKill;
      });
      let candidates = await inFlight();
      for (let waited = 0; candidates.length === 0 && waited < MAX_WAIT_FOR_ACTIVITY_MS; waited += 100) {
        await sleep(100);
        candidates = await inFlight();
      }
      const victim = candidates[0] ?? live[0];
      live.splice(live.indexOf(victim), 1);
      expect(await victim.kill('SIGKILL')).toBe('SIGKILL');
      if (candidates.length > 0) killsInFlight++;
      const wave = snapshot.results[0].fleet!.waves[1];
      doneAtLastKill = wave.done;
      console.info(`fleet kills: kill ${kill} at +${Date.now() - started}ms: pid ${victim.pid} ${candidates.length > 0 ? 'with a target in flight' : 'with nothing in flight'} (wave 2: ${wave.done} done, ${wave.running} running of ${wave.size})`);
      const replacement = await startPrebundledWorker(cli, bundle);
      workers.push(replacement);
      live.push(replacement);
    }

    const final = await Promise.race([result, sleep(120_000).then(() => Promise.reject(new Error('the rollout did not finish within 120 s of its start')))]);
    const elapsedMs = Date.now() - started;
    expect(final.stage).toBe('complete');
    const fleet = final.results[0].fleet!;
    expect(fleet.waves.map((wave) => [wave.size, wave.done, wave.blocked, wave.failed])).toEqual([
      [1, 1, 0, 0],
      [TARGET_COUNT - 1, TARGET_COUNT - 1, 0, 0],
    ]);

    const once = VERSIONS.map((version) => ({ version, n: 1 }));
    const doubled: string[] = [];
    const starts: number[] = [];
    for (const target of targets) {
      const schema = schemaOf(target);
      const ledger = await query<{ version: string; n: number }>(project.url, `SELECT version, count(*)::int AS n FROM ${schema}.dbchange_migration_log WHERE outcome = 'applied' GROUP BY version ORDER BY version`);
      const applied = await query<{ version: string; n: number }>(project.url, `SELECT version, count(*)::int AS n FROM ${schema}.schema_migrations GROUP BY version ORDER BY version`);
      const effects = await query<{ version: string; n: number }>(project.url, `SELECT version, count(*)::int AS n FROM ${schema}.applied_log GROUP BY version ORDER BY version`);
      for (const [what, rows] of [['ledger', ledger], ['schema_migrations', applied], ['applied_log', effects]] as const) {
        if (JSON.stringify(rows) !== JSON.stringify(once)) doubled.push(`${target} ${what}: ${JSON.stringify(rows)}`);
      }
      starts.push(...(await query<{ at: Date }>(project.url, `SELECT started_at AS at FROM ${schema}.applied_log`)).map((row) => row.at.getTime()));
    }
    expect(doubled, `targets whose migrations did not run exactly once:\n${doubled.join('\n')}`).toEqual([]);

    // Did the kills cut into work? An activity attempt that started again is the sign.
    const history = await handle.fetchHistory();
    const events = history.events ?? [];
    const restarted = events.filter((event) => (event.activityTaskStartedEventAttributes?.attempt ?? 1) > 1).length;
    const counts = final.results[0].counts;
    // How many migrations ran at once across the fleet (each holds its transaction for STEP_SLEEP_S from its insert).
    starts.sort((a, b) => a - b);
    let overlap = 0;
    for (let i = 0; i < starts.length; i++) {
      let j = i;
      while (j + 1 < starts.length && starts[j + 1] < starts[i] + STEP_SLEEP_S * 1000) j++;
      overlap = Math.max(overlap, j - i + 1);
    }
    console.info(
      `fleet kills: ${KILLS} kills, ${killsInFlight} while a worker had a target in flight; ${restarted} activity attempts started again; ` +
        `the status counts ${counts.applied} applied and ${counts['already-applied']} already-applied for ${starts.length} migrations that ran once each; rollout took ${elapsedMs}ms; at most ${overlap} migrations ran at once (concurrency ${CONCURRENCY})`,
    );
    expect(killsInFlight).toBeGreaterThan(0);
    expect(restarted).toBeGreaterThan(0);
    // What a killed try applied is counted by the try after it, as already applied: the status accounts for every one.
    expect(counts.applied + counts['already-applied']).toBe(starts.length);
    // Schemas of one database take applier locks of their own, so they apply side by side.
    expect(overlap).toBeGreaterThan(1);
  });

  it('A registry query that fails gets a clear error, and nothing starts', async () => {
    const targets = names('rfail', 3);
    const project = await createFleetProject('fleetregfail', { environment: 'regfail', targets, migrations: MIGRATIONS, registry: true });
    projects.push(project);
    await query(project.url, 'DROP TABLE public.cells');
    const taskQueue = suite.stack.newTaskQueue();
    await suite.stack.startWorker(project.config, taskQueue);
    const handle = await startPipeline(suite.stack.client, project.config, { requestedBy: 'dave', taskQueue });
    suite.workflowIds.push(handle.workflowId);

    const blocked = await waitFor(handle.workflowId, 'blocked at listing', (snapshot) => snapshot.stage === 'blocked');
    console.info(`fleet registry failure: ${blocked.lastError}`);
    expect(blocked.lastError).toContain('the registry query failed');
    expect(blocked.lastError).toContain('42P01');
    expect(blocked.lastError).not.toContain(project.url);
    for (const target of targets) expect(await project.versions(target)).toBeNull();
    const events = (await handle.fetchHistory()).events ?? [];
    const scheduled = events.map((event) => event.activityTaskScheduledEventAttributes?.activityType?.name).filter((name): name is string => !!name);
    expect(scheduled.filter((name) => name === 'rollOutTarget')).toEqual([]);
    // Non-retryable: listed once, not retried behind the person's back.
    expect(scheduled.filter((name) => name === 'listFleetTargets')).toEqual(['listFleetTargets']);

    expect(await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'alice', action: 'abort' })).toMatchObject({ accepted: true });
    await expect(handle.result()).rejects.toThrow();
    for (const target of targets) expect(await project.versions(target)).toBeNull();
  });

  it('replays every workflow of this file without nondeterminism', async () => {
    expect(await replayWorkflows(suite.stack, suite.workflowIds)).toBe(suite.workflowIds.length);
  });
});
