// History: a pipeline of thousands of migrations over two environments, on a dev server whose event limit is far
// below what one history of it would need: it completes, each run stays small, and `pdm status` answers quickly.
import { pipelineStatus, startPipeline } from '../cli/pipeline-client';
import { createDatabase, migrationText, versionAt, writeProjectOf } from './lib/databases';
import type { BenchResult } from './lib/result';
import type { BenchSettings } from './lib/settings';
import { median, percentile, round } from './lib/stats';
import { startBenchTemporal, type BenchServers } from './lib/temporal';

/** The proof: a server that terminates any run at 2,000 events (warns at 1,000). */
const LIMITS = { 'limit.historyCount.error': 2_000, 'limit.historyCount.warn': 1_000 };
const WARNING_EVENTS = 10_240;
const STATUS_EVERY_MS = 500;

export async function runHistory(settings: BenchSettings, _servers: BenchServers): Promise<BenchResult> {
  const count = settings.historyMigrations;
  const databases = await Promise.all([createDatabase(settings.adminUrl, 'hist'), createDatabase(settings.adminUrl, 'hist')]);
  const migrations = Object.fromEntries(
    Array.from({ length: count }, (_, index) => [`${versionAt(index)}_step_${index}.sql`, migrationText(`CREATE TABLE IF NOT EXISTS hist_${index} (id int);`)]),
  );
  const project = writeProjectOf({ 'hist-staging': databases[0].url, 'hist-production': databases[1].url }, migrations, ['lockRetry: { lockTimeout: 200ms, statementTimeout: 5m, maxWait: 10m }']);
  const temporal = await startBenchTemporal(LIMITS);
  try {
    const worker = await temporal.startWorker(project.config);
    try {
      const started = performance.now();
      const handle = await startPipeline(temporal.client, project.config, { requestedBy: 'bench', taskQueue: worker.taskQueue });
      const during: number[] = [];
      let finished = false;
      const done = handle.result().finally(() => (finished = true));
      while (!finished) {
        const asked = performance.now();
        await pipelineStatus(temporal.client, handle.workflowId).catch(() => undefined);
        during.push(performance.now() - asked);
        await Promise.race([done.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, STATUS_EVERY_MS))]);
      }
      const result = await done;
      const wallMs = performance.now() - started;
      const after: number[] = [];
      for (let index = 0; index < 20; index++) {
        const asked = performance.now();
        await pipelineStatus(temporal.client, handle.workflowId);
        after.push(performance.now() - asked);
      }
      const runs: number[] = [];
      for await (const execution of temporal.client.workflow.list({ query: `WorkflowId = '${handle.workflowId}'` })) {
        runs.push((await temporal.client.workflow.getHandle(handle.workflowId, execution.runId).fetchHistory()).events?.length ?? 0);
      }
      const applied = result.results.map((environment) => environment.counts.applied);
      const complete = result.stage === 'complete' && applied.every((n) => n === count);
      console.error(`history: ${count} × 2 in ${round(wallMs / 1000, 1)} s, ${runs.length} runs of ${runs.join(', ')} events; status p50 ${round(median(during))} ms during, ${round(median(after))} ms after`);
      const p50During = median(during);
      const p50After = median(after);
      return {
        name: 'history',
        title: 'History and status',
        setup: `${count} post-deploy migrations (each \`CREATE TABLE IF NOT EXISTS\`) on two environments (two databases), one pipeline, on a dev server started with \`limit.historyCount.error=${LIMITS['limit.historyCount.error']}\` and \`limit.historyCount.warn=${LIMITS['limit.historyCount.warn']}\`; \`pdm status\` (the status query) every ${STATUS_EVERY_MS} ms while it runs, and 20 times after it completed.`,
        reps: 1,
        columns: ['wall time (s)', 'runs', 'largest run (events)', 'status p50 during (ms)', 'status p99 during (ms)', 'status p50 after (ms)'],
        rows: [{ method: 'dbchange pipeline', medians: { 'wall time (s)': round(wallMs / 1000, 1), runs: runs.length, 'largest run (events)': Math.max(...runs), 'status p50 during (ms)': round(p50During), 'status p99 during (ms)': round(percentile(during, 99)), 'status p50 after (ms)': round(p50After) } }],
        goals: [
          { goal: `completes on a server that terminates a run at ${LIMITS['limit.historyCount.error']} events`, measured: complete ? `complete, ${applied.join(' and ')} applied` : `${result.stage}: ${result.summary}`, met: complete },
          { goal: `every run under ${WARNING_EVENTS} events`, measured: `${runs.length} runs, the largest ${Math.max(...runs)} events`, met: Math.max(...runs) < WARNING_EVENTS },
          { goal: '`pdm status` p50 under 1 s during and after', measured: `${round(p50During)} ms during, ${round(p50After)} ms after`, met: p50During < 1_000 && p50After < 1_000 },
        ],
        runs: [{ wallMs: round(wallMs), runs, statusDuringMs: during.map((ms) => round(ms)), statusAfterMs: after.map((ms) => round(ms)) }],
      };
    } finally {
      await worker.stop();
    }
  } finally {
    await temporal.close();
    project.cleanup();
    await Promise.all(databases.map((database) => database.drop()));
  }
}
