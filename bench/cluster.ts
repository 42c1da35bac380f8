// The cluster: throughput and approve → step latency on a self-hosted cluster (scripts/temporal-cluster.sh), as it
// comes and with the dispatch settings the README recommends, beside the dev server's figures in the same run.
import { sendDecision } from '../cli/pipeline-client';
import { startChangeRequest } from '../cli/change-client';
import { startBenchCluster } from './lib/cluster';
import { createDatabase, withClient, writeProject } from './lib/databases';
import { MARKS_TABLE_SQL, markingChange, waitForMark, waitUntilParked } from './lib/parked-changes';
import type { BenchResult } from './lib/result';
import type { BenchSettings } from './lib/settings';
import { median, percentile, round } from './lib/stats';
import { connectBenchTemporal, type BenchServers, type BenchTemporal } from './lib/temporal';
import { applyWithDbchange, smallMigrations } from './throughput';

/** Changes parked and then approved one by one in each repetition. */
const APPROVALS_PER_REP = 20;
const ENVIRONMENT = 'bench-cluster';

type Temporal = Pick<BenchTemporal, 'client' | 'startWorker'>;

interface Run {
  method: string;
  rep: number;
  throughputMs: number;
  latencies: number[];
}

export async function runCluster(settings: BenchSettings, servers: BenchServers): Promise<BenchResult> {
  const runs: Run[] = [];
  const measureAll = async (method: string, temporal: Temporal) => {
    for (let rep = 1; rep <= settings.reps; rep++) {
      const run = { method, rep, throughputMs: await throughput(settings, temporal), latencies: await approvalLatencies(settings, temporal) };
      console.error(`cluster: ${method} rep ${rep}: ${settings.migrations} migrations in ${run.throughputMs} ms; approve→step p50 ${round(percentile(run.latencies, 50))} ms`);
      runs.push(run);
    }
  };
  await measureAll('dev server, as it comes', servers.standard);
  await measureAll('dev server, fast dispatch', servers.fast);

  const cluster = await startBenchCluster(false);
  const startSeconds = [round(cluster.startSeconds, 1)];
  try {
    // One client for both cluster runs: the frontend keeps its address across the restart.
    const temporal = await connectBenchTemporal(cluster.address, async () => undefined);
    try {
      await measureAll('cluster, as it comes', temporal);
      startSeconds.push(round((await cluster.restart(true)).startSeconds, 1));
      await measureAll('cluster, fast dispatch', temporal);
    } finally {
      await temporal.close();
    }
  } finally {
    await cluster.destroy();
  }

  const methods = [...new Set(runs.map((run) => run.method))];
  const of = (method: string) => runs.filter((run) => run.method === method);
  const throughputOf = (method: string) => median(of(method).map((run) => run.throughputMs));
  const latenciesOf = (method: string) => of(method).flatMap((run) => run.latencies);
  const ratio = (method: string, base: string) => round(throughputOf(method) / throughputOf(base), 2);
  return {
    name: 'cluster',
    title: 'Self-hosted cluster',
    setup: `temporal-server v1.29.1 built from the Go module proxy, started by \`scripts/temporal-cluster.sh\` (started in ${startSeconds.join(' s and ')} s): frontend, history, matching and worker as four processes, PostgreSQL persistence and SQL visibility on the machine's PostgreSQL, 4 history shards; first with Temporal's default dynamic config, then restarted with \`--fast-dispatch\` (\`history.transferProcessorMaxPollRPS: 1000\`, \`system.enableActivityEagerExecution: true\`). Beside them, the benchmark's dev servers (SQLite in memory) as they come and with \`FAST_DISPATCH\`. Each repetition on each: ${settings.migrations} small post-deploy migrations through the real pipeline into a fresh database (as in Throughput), then ${APPROVALS_PER_REP} C3 change requests parked at their approval and approved one after another (approve → first SQL step, as in Scale). Workers run in the benchmark's process. Percentiles are over every approval of every repetition. The cluster's pipeline took ${ratio('cluster, as it comes', 'dev server, as it comes')}× the dev server's wall time as they come, and ${ratio('cluster, fast dispatch', 'dev server, fast dispatch')}× with the dispatch settings: each task crosses processes there (frontend, history, matching) and each state change is a PostgreSQL transaction, where the dev server is one process on SQLite in memory.`,
    reps: settings.reps,
    columns: ['pipeline wall time (ms)', 'per migration (ms)', 'approve→step p50 (ms)', 'approve→step p99 (ms)'],
    rows: methods.map((method) => ({
      method,
      medians: {
        'pipeline wall time (ms)': round(throughputOf(method)),
        'per migration (ms)': round(throughputOf(method) / settings.migrations, 1),
        'approve→step p50 (ms)': round(percentile(latenciesOf(method), 50)),
        'approve→step p99 (ms)': round(percentile(latenciesOf(method), 99)),
      },
    })),
    goals: [
      {
        goal: 'the recommended dispatch settings speed up a cluster pipeline (fast/default wall time ratio < 1.0)',
        measured: `${ratio('cluster, fast dispatch', 'cluster, as it comes')}×`,
        met: ratio('cluster, fast dispatch', 'cluster, as it comes') < 1,
      },
    ],
    runs,
  };
}

async function throughput(settings: BenchSettings, temporal: Temporal): Promise<number> {
  const database = await createDatabase(settings.adminUrl, 'cltput');
  const project = writeProject('bench-cltput', database.url, smallMigrations(settings.migrations));
  try {
    const started = performance.now();
    await applyWithDbchange(project, temporal);
    return round(performance.now() - started);
  } finally {
    project.cleanup();
    await database.drop();
  }
}

/** Parks APPROVALS_PER_REP changes, then approves them one by one: each latency is approve sent → step ran. */
async function approvalLatencies(settings: BenchSettings, temporal: Temporal): Promise<number[]> {
  const database = await createDatabase(settings.adminUrl, 'cllat');
  await withClient(database.url, (client) => client.query(MARKS_TABLE_SQL));
  const project = writeProject(ENVIRONMENT, database.url, {}, '200ms', { reviewer: ['reviewer'] });
  const worker = await temporal.startWorker(project.config);
  try {
    const prefix = `cl${database.name.slice(-8)}`;
    const files = await Promise.all(Array.from({ length: APPROVALS_PER_REP }, (_, index) => markingChange(prefix, index, ENVIRONMENT)));
    await Promise.all(files.map((file) => startChangeRequest(temporal.client, project.config, file, { taskQueue: worker.taskQueue })));
    await Promise.all(files.map((file) => waitUntilParked(temporal, `cr-${file.changeRequest.id}`)));
    const latencies: number[] = [];
    for (const file of files) {
      const sentAt = Date.now();
      const answer = await sendDecision(temporal.client, `cr-${file.changeRequest.id}`, 'approve', { user: 'reviewer', role: 'reviewer', checksum: file.checksum });
      if (!answer.accepted) throw new Error(`approval of cr-${file.changeRequest.id} refused: ${answer.reason}`);
      latencies.push((await waitForMark(database.url, file.changeRequest.id)) - sentAt);
    }
    // Each change stays open for its rollback window; it is done with here.
    await Promise.all(files.map((file) => temporal.client.workflow.getHandle(`cr-${file.changeRequest.id}`).terminate('benchmark done').catch(() => undefined)));
    return latencies;
  } finally {
    await worker.stop();
    project.cleanup();
    await database.drop();
  }
}
