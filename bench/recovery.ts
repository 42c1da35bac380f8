// Recovery: time from SIGKILL of the worker running a migration to that migration running again on another worker.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startPipeline } from '../cli/pipeline-client';
import { startWorkerProcess, type WorkerProcess } from './lib/worker-process';
import { createDatabase, migrationText, versionAt, withClient, writeProject } from './lib/databases';
import type { BenchResult } from './lib/result';
import type { BenchSettings } from './lib/settings';
import { median, round } from './lib/stats';
import type { BenchServers } from './lib/temporal';

/** The apply activity's heartbeat timeout (workflows/pipeline.ts): a dead worker's attempt is retried after it. */
const HEARTBEAT_TIMEOUT_MS = 10_000;
const SLOW_STATEMENT = 'pg_sleep(4)';

interface Run {
  rep: number;
  killToRerunMs: number;
}

export async function runRecovery(settings: BenchSettings, servers: BenchServers): Promise<BenchResult> {
  // Its figures do not depend on how fast the server dispatches tasks: the dev server as it comes.
  const temporal = servers.standard;
  const database = await createDatabase(settings.adminUrl, 'recovery');
  const project = writeProject('bench-recovery', database.url, {});
  const taskQueue = `bench-recovery-${Date.now()}`;
  const workers: WorkerProcess[] = [];
  const runs: Run[] = [];
  try {
    // Two workers, as in production: the survivor takes the retried attempt.
    workers.push(await startWorkerProcess(temporal.server.address, project.configPath, taskQueue), await startWorkerProcess(temporal.server.address, project.configPath, taskQueue));
    for (let rep = 1; rep <= settings.reps; rep++) {
      const version = versionAt(rep);
      writeFileSync(join(project.migrationsDir, `${version}_slow_${rep}.sql`), migrationText(`SELECT ${SLOW_STATEMENT};\nCREATE TABLE recovered_${rep} (id int);`));
      const handle = await startPipeline(temporal.client, project.config, { requestedBy: 'bench', taskQueue });
      const first = await waitForApplier(database.url);
      const identity = await eventuallyValue(async () => (await handle.describe()).raw.pendingActivities?.[0]?.lastWorkerIdentity ?? undefined);
      const victim = workers.find((worker) => identity.startsWith(`${worker.child.pid}@`));
      if (!victim) throw new Error(`no worker process has identity ${identity}`);
      const killedAt = performance.now();
      victim.child.kill('SIGKILL');
      await waitForApplier(database.url, first);
      const killToRerunMs = round(performance.now() - killedAt);
      runs.push({ rep, killToRerunMs });
      console.error(`recovery: rep ${rep}: the migration ran again ${killToRerunMs} ms after the kill`);
      const result = await handle.result();
      if (result.stage !== 'complete') throw new Error(`pipeline ended ${result.stage}`);
      workers.splice(workers.indexOf(victim), 1);
      workers.push(await startWorkerProcess(temporal.server.address, project.configPath, taskQueue));
    }
  } finally {
    for (const worker of workers) worker.child.kill('SIGKILL');
    project.cleanup();
    await database.drop();
  }
  const medianMs = round(median(runs.map((run) => run.killToRerunMs)));
  return {
    name: 'recovery',
    title: 'Recovery',
    setup: `two \`dbchange worker\` processes; the one running a migration (\`SELECT ${SLOW_STATEMENT}\`) is killed with SIGKILL; measured until a new PostgreSQL session runs the migration again (50 ms poll).`,
    reps: settings.reps,
    columns: ['kill to re-run (ms)', 'max (ms)'],
    rows: [{ method: 'dbchange', medians: { 'kill to re-run (ms)': medianMs, 'max (ms)': Math.max(...runs.map((run) => run.killToRerunMs)) } }],
    goals: [
      {
        goal: `≤ heartbeat timeout + 2 s (${(HEARTBEAT_TIMEOUT_MS + 2_000) / 1000} s)`,
        measured: `${medianMs} ms`,
        met: medianMs <= HEARTBEAT_TIMEOUT_MS + 2_000,
        limitedBy: 'the server notices the dead worker only when the 10 s heartbeat timeout passes; then the retry backoff (500 ms) and a poll',
      },
    ],
    runs,
  };
}

/** Waits for a session running the slow migration (other than `previous`) and returns its pid. */
async function waitForApplier(url: string, previous?: number): Promise<number> {
  return eventuallyValue(() =>
    withClient(url, async (client) => {
      const rows = await client.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query LIKE $1 AND pid <> pg_backend_pid()`,
        [`%${SLOW_STATEMENT}%`],
      );
      return rows.rows.find((row) => row.pid !== previous)?.pid;
    }),
  );
}

async function eventuallyValue<T>(check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
