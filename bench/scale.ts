// Scale: 1,000 change requests parked on an approval, served by one worker process.
import { sendDecision } from '../cli/pipeline-client';
import { startChangeRequest } from '../cli/change-client';
import { DEFAULT_MAX_CACHED_WORKFLOWS, DEFAULT_MAX_CONCURRENT_WORKFLOW_TASKS, HEAP_FLAGS } from '../worker/memory-defaults';
import { createDatabase, withClient, writeProject } from './lib/databases';
import type { BenchResult } from './lib/result';
import type { BenchSettings } from './lib/settings';
import { percentile, round } from './lib/stats';
import type { BenchServers, BenchTemporal } from './lib/temporal';
import { startWorkerProcess } from './lib/worker-process';
import { MARKS_TABLE_SQL, markingChange, sleep, waitForMark, waitUntilParked } from './lib/parked-changes';

const ENVIRONMENT = 'bench-scale';
const RSS_GOAL_MB = 300;
const P99_GOAL_MS = 250;
/** Starts and status checks in flight at once. */
const CONCURRENCY = 20;

/** A V8 heap limit for the worker process, so that garbage is collected before the heap grows far. */
const SMALL_HEAP_MB = 256;

/** How one run starts its worker, and on which server. */
interface Variant {
  /** Which server and worker settings, as the table names them. */
  method: string;
  fastDispatch: boolean;
  /** `--max-cached-workflows`; the worker's default (DEFAULT_MAX_CACHED_WORKFLOWS) when absent. */
  cached?: number;
  heapMb?: number;
}

/** The worker as it comes first (the goals are about it), then what a bigger cache or a heap limit changes. */
function variants(parked: number): Variant[] {
  return [
    { method: 'dbchange worker (default flags), fast dispatch', fastDispatch: true },
    { method: 'dbchange worker (default flags)', fastDispatch: false },
    { method: `dbchange worker --max-cached-workflows ${parked}, fast dispatch`, fastDispatch: true, cached: parked },
    { method: `dbchange worker, heap ${SMALL_HEAP_MB} MB, fast dispatch`, fastDispatch: true, heapMb: SMALL_HEAP_MB },
  ];
}

interface ScaleRun {
  /** The worker polling, before any change was started. */
  idleRssMb: number;
  parkMs: number;
  parkedRssMb: number;
  peakRssMb: number;
  latencies: number[];
}

export async function runScale(settings: BenchSettings, servers: BenchServers): Promise<BenchResult> {
  const runs: (ScaleRun & Variant)[] = [];
  for (const variant of variants(settings.parked)) runs.push({ ...variant, ...(await parkAndApprove(settings, variant.fastDispatch ? servers.fast : servers.standard, variant)) });
  const p99Of = (run: ScaleRun) => round(percentile(run.latencies, 99));
  const headline = runs[0];
  const grown = (run: ScaleRun) => round(run.parkedRssMb - run.idleRssMb);
  return {
    name: 'scale',
    title: 'Scale',
    setup: `${settings.parked} C3 change requests started and parked at their approval on one \`dbchange worker\` process (its workflow bundle built by \`npm run build\`); then ${settings.approvals} of them approved one after another (the rest stay parked). Latency: from sending the approve update to the CR's first SQL step running (its \`clock_timestamp()\`); in between the change runs three activities (production checks, prechecks, the step), each with a workflow task. RSS from /proc: idle 3 s after the worker started, parked 3 s after the last change parked, and the peak of samples every 500 ms from the first start to the last approval. Four runs: \`dbchange worker\` with no flags (its defaults: a cache of ${DEFAULT_MAX_CACHED_WORKFLOWS} workflows, ${DEFAULT_MAX_CONCURRENT_WORKFLOW_TASKS} workflow tasks at once, V8 \`${HEAP_FLAGS.join(' ')}\`) on a dev server with \`FAST_DISPATCH\` (see Throughput) and on one as it comes; then with every parked change cached (\`--max-cached-workflows ${settings.parked}\`, as the SDK's own default, thousands here, did), and with \`NODE_OPTIONS=--max-old-space-size=${SMALL_HEAP_MB}\`, both with fast dispatch. Percentiles are over all approvals of a run.`,
    reps: 1,
    columns: ['parked', 'RSS idle (MB)', 'RSS parked (MB)', 'peak RSS (MB)', 'approve→step p50 (ms)', 'approve→step p99 (ms)'],
    rows: runs.map((run) => ({
      method: run.method,
      medians: {
        parked: settings.parked,
        'RSS idle (MB)': round(run.idleRssMb),
        'RSS parked (MB)': round(run.parkedRssMb),
        'peak RSS (MB)': round(run.peakRssMb),
        'approve→step p50 (ms)': round(percentile(run.latencies, 50)),
        'approve→step p99 (ms)': p99Of(run),
      },
    })),
    goals: [
      ...runs.map((run) => ({
        goal: `worker RSS ≤ ${RSS_GOAL_MB} MB (${run.method})`,
        measured: `${round(run.peakRssMb)} MB peak, ${round(run.parkedRssMb)} MB parked`,
        met: run.peakRssMb <= RSS_GOAL_MB,
        limitedBy: `the idle worker's own ${round(run.idleRssMb)} MB (Node, the SDK's core, the workflow bundle, two V8 heaps), then ${grown(run)} MB more with the changes parked: ${
          run.cached
            ? `${run.cached} cached workflows, ${round((grown(run) - grown(headline)) / (run.cached - DEFAULT_MAX_CACHED_WORKFLOWS), 2)} MB each over the default's ${DEFAULT_MAX_CACHED_WORKFLOWS} (in the workflow thread's heap and the SDK core's native memory)`
            : `a cache of ${DEFAULT_MAX_CACHED_WORKFLOWS} workflows, garbage from ${settings.parked} changes started and queried at once, and the SDK core's native memory, which stays at its high-water mark`
        }`,
      })),
      ...runs.map((run) => ({
        goal: `approve→next step p99 ≤ ${P99_GOAL_MS} ms (${run.method})`,
        measured: `${p99Of(run)} ms`,
        met: p99Of(run) <= P99_GOAL_MS,
        limitedBy: `the six tasks between the approval and the step (three activities and their workflow tasks), ${run.fastDispatch ? 'run by a worker that shares two cores with the server, PostgreSQL and the benchmark' : "each waiting about 40 ms for the server to hand it over at the dev server's default task-queue read rate"}; a change that had left the cache is first replayed from its history`,
      })),
    ],
    runs,
  };
}

/** Parks `settings.parked` change requests on one worker process, then approves some one by one and times each. */
async function parkAndApprove(settings: BenchSettings, temporal: BenchTemporal, { method, cached, heapMb }: Variant): Promise<ScaleRun> {
  const database = await createDatabase(settings.adminUrl, 'scale');
  // The step records when it ran, by the database's clock, on the machine that also sends the approvals.
  await withClient(database.url, (client) => client.query(MARKS_TABLE_SQL));
  const project = writeProject(ENVIRONMENT, database.url, {}, '200ms', { reviewer: ['reviewer'] });
  const taskQueue = `bench-scale-${Date.now()}`;
  const workerArgs = cached ? ['--max-cached-workflows', String(cached)] : [];
  const worker = await startWorkerProcess(temporal.server.address, project.configPath, taskQueue, workerArgs, heapMb ? { NODE_OPTIONS: `--max-old-space-size=${heapMb}` } : {});
  await sleep(3_000);
  const idleRssMb = worker.rssMb();
  const rssSamples: number[] = [];
  const sampler = setInterval(() => rssSamples.push(worker.rssMb()), 500);
  try {
    const files = await Promise.all(Array.from({ length: settings.parked }, (_, index) => markingChange('scale', index, ENVIRONMENT)));
    const startedAt = performance.now();
    await inBatches(files, (file) => startChangeRequest(temporal.client, project.config, file, { taskQueue }).then(() => undefined));
    await inBatches(files, (file) => waitUntilParked(temporal, `cr-${file.changeRequest.id}`));
    const parkMs = performance.now() - startedAt;
    await sleep(3_000);
    const parkedRssMb = worker.rssMb();
    console.error(`scale (${method}): ${settings.parked} change requests parked in ${round(parkMs / 1000, 1)} s; worker RSS ${round(parkedRssMb)} MB`);

    const latencies: number[] = [];
    for (const file of files.slice(0, settings.approvals)) {
      const id = file.changeRequest.id;
      const sentAt = Date.now();
      const answer = await sendDecision(temporal.client, `cr-${id}`, 'approve', { user: 'reviewer', role: 'reviewer', checksum: file.checksum });
      if (!answer.accepted) throw new Error(`approval of cr-${id} refused: ${answer.reason}`);
      const ranAt = await waitForMark(database.url, id);
      latencies.push(ranAt - sentAt);
    }
    const peakRssMb = Math.max(...rssSamples, worker.rssMb());
    console.error(`scale (${method}): approve to next step over ${latencies.length} approvals: p50 ${round(percentile(latencies, 50))} ms, p99 ${round(percentile(latencies, 99))} ms; peak RSS ${round(peakRssMb)} MB`);
    return { idleRssMb: round(idleRssMb), parkMs: round(parkMs), parkedRssMb: round(parkedRssMb), peakRssMb: round(peakRssMb), latencies };
  } finally {
    clearInterval(sampler);
    worker.child.kill('SIGTERM');
    await terminateAll(temporal);
    project.cleanup();
    await database.drop();
  }
}

async function inBatches<T>(items: T[], work: (item: T) => Promise<void>): Promise<void> {
  for (let start = 0; start < items.length; start += CONCURRENCY) await Promise.all(items.slice(start, start + CONCURRENCY).map(work));
}

async function terminateAll(temporal: BenchTemporal): Promise<void> {
  const running: string[] = [];
  for await (const execution of temporal.client.workflow.list({ query: `WorkflowId STARTS_WITH 'cr-scale-' AND ExecutionStatus = 'Running'` })) running.push(execution.workflowId);
  await inBatches(running, (id) => temporal.client.workflow.getHandle(id).terminate('scale benchmark done').then(() => undefined, () => undefined));
}
