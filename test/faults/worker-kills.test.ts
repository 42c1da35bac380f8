import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipelineStatus, startPipeline } from '../../cli/pipeline-client';
import { assertBuilt, stopWorkerProcesses, type CliTarget, type WorkerProcess } from '../helpers/processes';
import { query } from '../helpers/postgres';
import { createProject, migration, type TestProject } from '../helpers/project';
import { createStack, replayWorkflows, type Stack } from '../helpers/stack';
import { expectNoSecretsInHistories, faultSeed, seededRandom, sleep, startPrebundledWorker, startWebhook, writeBundle } from './fault-helpers';

const ENVIRONMENTS = ['wkill-a', 'wkill-b', 'wkill-c'];
const MIGRATION_COUNT = 20;
const TRIALS = 20;
/**
 * Each migration sleeps, so a kill often lands inside one; its side effect row shows a second run if there ever was
 * one. A batch (1.5 s budget) holds two of them, so a kill in a batch's second migration cuts a batch that already
 * committed one: its retry must find that one applied.
 */
const MIGRATION_SLEEP_S = 1;
const MAX_KILL_DELAY_MS = 2_000;
/** How long a trial waits for a live worker to pick up a migration before it kills an idle one instead. */
const MAX_WAIT_FOR_MIGRATION_MS = 5_000;
/** After the last kill: the killed workers' activities are retried after their 10 s heartbeat timeout, on a busy machine. */
const FINISH_WITHIN_MS = 240_000;
const PASSWORD = 'wkill-db-password-7f3a91c2';
const WEBHOOK_TOKEN = 'wkill-webhook-token-5be0d4';

const VERSIONS = Array.from({ length: MIGRATION_COUNT }, (_, index) => `202405010000${String(index + 1).padStart(2, '0')}`);
const MIGRATIONS = Object.fromEntries(
  VERSIONS.map((version) => [
    `${version}_kill_step.sql`,
    migration(`INSERT INTO kill_side_effects (version) VALUES ('${version}');\nSELECT pg_sleep(${MIGRATION_SLEEP_S});\nCREATE TABLE kill_step_${version} (id int);`),
  ]),
);

/** How many migration outcomes an activity result holds (a batch's), 0 for any other activity. */
function resultOutcomes(result: { payloads?: { data?: Uint8Array | null }[] | null } | null | undefined): number {
  const text = Buffer.from(result?.payloads?.[0]?.data ?? new Uint8Array()).toString('utf8');
  if (!text.startsWith('{')) return 0; // void or a plain value
  const parsed = JSON.parse(text) as { outcomes?: unknown[] };
  return Array.isArray(parsed.outcomes) ? parsed.outcomes.length : 0;
}

describe('worker processes killed with SIGKILL at random points', () => {
  let stack: Stack;
  let project: TestProject;
  let webhook: Awaited<ReturnType<typeof startWebhook>>;
  const workers: WorkerProcess[] = [];
  const workflowIds = ENVIRONMENTS.map((environment) => `pdm-${environment}`);

  beforeAll(async () => {
    assertBuilt();
    stack = await createStack();
    webhook = await startWebhook();
    project = await createProject('wkill', {
      environments: ENVIRONMENTS.map((name) => ({ name })),
      migrations: MIGRATIONS,
      password: PASSWORD,
      webhookUrl: webhook.url(WEBHOOK_TOKEN),
    });
    await Promise.all(ENVIRONMENTS.map((environment) => query(project.urls[environment], 'CREATE TABLE kill_side_effects (id serial PRIMARY KEY, version text NOT NULL)')));
  });
  afterAll(async () => {
    await stopWorkerProcesses(workers, 5_000);
    await stack?.close();
    await webhook?.close();
    await project?.cleanup();
  });

  /** Each pipeline's stage and what it waits for, for a failure message. */
  async function describeStuck(): Promise<string> {
    const states = await Promise.all(workflowIds.map(async (id) => {
      const snapshot = await pipelineStatus(stack.client, id).catch((error: unknown) => ({ stage: `unreadable (${String(error)})`, waitingFor: undefined, lastError: undefined }));
      return `${id} ${snapshot.stage}${snapshot.waitingFor ? `: ${snapshot.waitingFor}` : ''}${snapshot.lastError ? ` (last error: ${snapshot.lastError})` : ''}`;
    }));
    return states.join('; ');
  }

  it(`applies every migration exactly once across ${TRIALS} seeded kills during three 20-migration pipelines`, { timeout: 480_000 }, async () => {
    const seed = faultSeed();
    const random = seededRandom(seed);
    console.info(`worker kills: seed ${seed} (replay with DBCHANGE_FAULT_SEED=${seed})`);
    const target: CliTarget = { address: stack.address, taskQueue: stack.newTaskQueue(), configPath: project.configPath };
    const bundle = writeBundle(stack);
    // Two workers, so one keeps working while the killed one's replacement starts.
    const live: WorkerProcess[] = await Promise.all([startPrebundledWorker(target, bundle), startPrebundledWorker(target, bundle)]);
    workers.push(...live);
    const handles = await Promise.all(
      ENVIRONMENTS.map((environment) => startPipeline(stack.client, project.config, { requestedBy: 'dave', taskQueue: target.taskQueue, environments: [environment] })),
    );
    const results = handles.map((handle) => handle.result());
    for (const result of results) result.catch(() => undefined); // awaited below; no unhandled rejection meanwhile

    // Replacements start in the background, so kills keep their random rhythm whatever a start costs on a busy machine.
    const starting: Promise<WorkerProcess>[] = [];
    const replace = () => {
      const next = startPrebundledWorker(target, bundle).then((worker) => {
        workers.push(worker);
        live.push(worker);
        return worker;
      });
      starting.push(next);
    };
    /** Which pipelines run, and which live workers have a migration in flight (describe works without a live worker). */
    const survey = async () => {
      const descriptions = await Promise.all(handles.map((handle) => handle.describe()));
      const running = descriptions.filter((description) => description.status.name === 'RUNNING').map((description) => description.workflowId);
      const applying = new Set(
        descriptions.flatMap((description) =>
          (description.raw.pendingActivities ?? [])
            .filter((activity) => activity.activityType?.name === 'applyMigrations' && activity.lastStartedTime)
            .map((activity) => Number.parseInt(activity.lastWorkerIdentity ?? '', 10)),
        ),
      );
      return { running, candidates: live.filter((worker) => applying.has(worker.pid)) };
    };
    let killsDuringPipelines = 0;
    let killsMidMigration = 0;
    for (let trial = 1; trial <= TRIALS; trial++) {
      const delayMs = Math.round(random() * MAX_KILL_DELAY_MS);
      const pick = random();
      await sleep(delayMs);
      while (live.length === 0) await sleep(50); // every worker is dead: wait for a replacement
      // The moment is random; the victim is a worker with a migration in flight. Right after earlier kills the live
      // workers may all be idle (the dead ones' migrations wait for the heartbeat timeout), so wait a little for one.
      let { running, candidates } = await survey();
      for (let waited = 0; candidates.length === 0 && running.length > 0 && waited < MAX_WAIT_FOR_MIGRATION_MS; waited += 100) {
        await sleep(100);
        ({ running, candidates } = await survey());
      }
      if (running.length === 0) throw new Error(`trial ${trial} (seed ${seed}): every pipeline already finished; the workload is too short for ${TRIALS} kills`);
      killsDuringPipelines++;
      const pool = candidates.length > 0 ? candidates : live;
      const victim = pool[Math.floor(pick * pool.length)];
      live.splice(live.indexOf(victim), 1);
      expect(await victim.kill('SIGKILL')).toBe('SIGKILL');
      if (candidates.length > 0) killsMidMigration++;
      console.info(`worker kills: trial ${trial} seed ${seed}: +${delayMs}ms killed pid ${victim.pid} ${candidates.length > 0 ? 'mid-migration' : 'between migrations'} while ${running.join(', ')} ran`);
      replace();
    }
    await Promise.all(starting);

    // The pipelines finish once the killed workers' activities time out and run again; if they do not, say where each stands.
    let deadline: NodeJS.Timeout | undefined;
    const stuck = new Promise<never>((_, reject) => {
      deadline = setTimeout(() => void describeStuck().then((text) => reject(new Error(`the pipelines did not finish within ${FINISH_WITHIN_MS / 1000}s of the last kill: ${text}`))), FINISH_WITHIN_MS);
    });
    const finals = await Promise.race([Promise.all(results), stuck]).finally(() => clearTimeout(deadline));
    expect(killsDuringPipelines).toBe(TRIALS);
    let retried = 0;
    let confirmedAfterCommit = 0;
    for (const [index, final] of finals.entries()) {
      const environment = ENVIRONMENTS[index];
      expect(final.stage).toBe('complete');
      const outcomes = final.results[0].migrations;
      // already-applied: the worker died after the commit but before reporting it; the retry found the row and ran nothing.
      expect(outcomes.map((outcome) => outcome.version)).toEqual(VERSIONS);
      for (const outcome of outcomes) expect(['applied', 'already-applied']).toContain(outcome.outcome);
      retried += outcomes.filter((outcome) => outcome.attempts > 1).length;
      confirmedAfterCommit += outcomes.filter((outcome) => outcome.outcome === 'already-applied').length;

      const url = project.urls[environment];
      const applied = (await query<{ version: string }>(url, 'SELECT version FROM schema_migrations ORDER BY version')).map((row) => row.version);
      const ledger = await query<{ version: string; n: number }>(url, `SELECT version, count(*)::int AS n FROM dbchange_migration_log WHERE outcome = 'applied' GROUP BY version ORDER BY version`);
      const sideEffects = await query<{ version: string; n: number }>(url, 'SELECT version, count(*)::int AS n FROM kill_side_effects GROUP BY version ORDER BY version');
      expect(applied).toEqual(VERSIONS);
      expect(ledger).toEqual(VERSIONS.map((version) => ({ version, n: 1 })));
      expect(sideEffects).toEqual(VERSIONS.map((version) => ({ version, n: 1 })));
      expect(await query(url, `SELECT count(*)::int AS n FROM dbchange_migration_log WHERE outcome <> 'applied'`)).toEqual([{ n: 0 }]);
    }
    console.info(`worker kills: seed ${seed}: ${TRIALS} kills (${killsMidMigration} mid-migration), ${retried} migrations retried after a kill (${confirmedAfterCommit} of them had committed just before it), each applied once`);
    // The kills must have cut into work (an activity attempt started again), or this test proved nothing about retries.
    let restartedAttempts = 0;
    let batchesOfSeveral = 0;
    for (const handle of handles) {
      const history = await handle.fetchHistory();
      restartedAttempts += (history.events ?? []).filter((event) => (event.activityTaskStartedEventAttributes?.attempt ?? 1) > 1).length;
      batchesOfSeveral += (history.events ?? []).filter((event) => event.activityTaskCompletedEventAttributes && resultOutcomes(event.activityTaskCompletedEventAttributes.result) > 1).length;
    }
    // Batches of several migrations were applied, so kills cut into batches, not only into single migrations.
    expect(batchesOfSeveral).toBeGreaterThan(0);
    console.info(`worker kills: seed ${seed}: ${restartedAttempts} activity attempts (batches, listings, notifications) started again after a kill; ${batchesOfSeveral} batches settled several migrations`);
    expect(restartedAttempts).toBeGreaterThan(0);
    // Many kills must cut into a running migration (the rest land between migrations), and those show as retried.
    expect(killsMidMigration).toBeGreaterThanOrEqual(TRIALS / 4);
    expect(retried).toBeGreaterThan(0);
  });

  it('keeps the database password and the webhook token out of every history it produced', async () => {
    expect(await expectNoSecretsInHistories(stack, workflowIds, [PASSWORD, WEBHOOK_TOKEN])).toBe(ENVIRONMENTS.length);
    expect(webhook.received.length).toBeGreaterThan(0);
  });

  it('replays the pipeline histories it produced without nondeterminism', async () => {
    expect(await replayWorkflows(stack, workflowIds)).toBe(ENVIRONMENTS.length);
  });
});
