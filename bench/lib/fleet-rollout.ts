// The dbchange side of the fleet benchmark: one rollout through the post-deploy pipeline on one `dbchange worker`
// process, with its wall time, the worker's peak RSS, the events of every workflow run, and `pdm status` latency.
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Client } from '@temporalio/client';
import { pipelineStatus, startPipeline } from '../../cli/pipeline-client';
import { parseConfig } from '../../core/config';
import type { WaveStatus } from '../../core/fleet-progress';
import type { PipelineStatus } from '../../core/pipeline';
import { cpuBetween, readCpu, type CpuUse } from './cpu-usage';
import type { FleetProject } from './fleet-project';
import { sampleRss } from './rss-sampler';
import type { BenchTemporal } from './temporal';
import { startWorkerProcess } from './worker-process';

const STATUS_EVERY_MS = 500;
/** The worker settles (bundle loaded, polling) before its idle RSS is read, as in the scale benchmark. */
const SETTLE_MS = 3_000;

export interface RolloutMeasurement {
  wallMs: number;
  /** The pipeline's final stage ('complete' when every wave ran), or 'blocked' / 'timed out' when the benchmark stopped it. */
  stage: string;
  summary?: string;
  idleRssMb: number;
  peakRssMb: number;
  /** CPU over the rollout: the whole machine's, and the worker's. */
  cpu: CpuUse;
  /** Every workflow run on the server (the pipeline's continued runs, and any child workflows), with its events. */
  runs: { workflowId: string; runId: string; events: number }[];
  /** Runs of the pipeline workflow itself. */
  pipelineRuns: number;
  /** Each status query's latency while the rollout ran; failures are counted, not timed. */
  statusMs: number[];
  statusFailures: number;
  /** Each wave's counts in the pipeline's last status (`results[0].fleet.waves`). */
  waves: Pick<WaveStatus, 'wave' | 'size' | 'done' | 'blocked' | 'failed'>[];
}

/**
 * Runs the rollout on `temporal` (a server of its own, so that every run on it belongs to this rollout), gives up
 * after `timeoutMs` by terminating the pipeline.
 */
export async function runFleetRollout(temporal: BenchTemporal, project: FleetProject, timeoutMs: number): Promise<RolloutMeasurement> {
  const config = parseConfig(readFileSync(project.configPath, 'utf8'), project.configPath, process.env, dirname(project.configPath));
  const taskQueue = `bench-fleet-${Date.now()}`;
  // Default flags, as `dbchange worker` comes: the goal is about the worker users run.
  const worker = await startWorkerProcess(temporal.server.address, project.configPath, taskQueue);
  try {
    await sleep(SETTLE_MS);
    const idleRssMb = worker.rssMb();
    const rss = sampleRss(worker);
    const cpuAtStart = readCpu(worker.child.pid!);
    const started = performance.now();
    const handle = await startPipeline(temporal.client, config, { requestedBy: 'bench', taskQueue });
    let finished = false;
    const done = handle.result().finally(() => (finished = true));
    const deadline = started + timeoutMs;
    const statusMs: number[] = [];
    let statusFailures = 0;
    let lastStatus: PipelineStatus | undefined;
    // A blocked pipeline waits for a person, which never comes here: it is stopped as soon as it is seen blocked.
    while (!finished && performance.now() < deadline && lastStatus?.stage !== 'blocked') {
      const asked = performance.now();
      try {
        lastStatus = await pipelineStatus(temporal.client, handle.workflowId);
        statusMs.push(performance.now() - asked);
      } catch {
        // E.g. asked in the instant between two runs: it counts against the 1 s goal as an unanswered query.
        statusFailures++;
      }
      await Promise.race([done.catch(() => undefined), sleep(STATUS_EVERY_MS)]);
    }
    let stage: string;
    let summary: string | undefined;
    if (finished) {
      const result = await done;
      ({ stage, summary } = result);
      lastStatus = result;
    } else {
      stage = lastStatus?.stage === 'blocked' ? 'blocked' : 'timed out';
      summary = stage === 'blocked' ? lastStatus?.blocks.at(-1)?.message : `not finished after ${Math.round(timeoutMs / 1000)} s`;
      await handle.terminate(`fleet benchmark: ${stage}`);
    }
    const wallMs = performance.now() - started;
    const peakRssMb = rss.stop();
    const cpu = cpuBetween(cpuAtStart, readCpu(worker.child.pid!));
    const runs = await everyRun(temporal.client, handle.workflowId, lastStatus?.run ?? 1);
    const waves = (lastStatus?.results[0]?.fleet?.waves ?? []).map(({ wave, size, done, blocked, failed }) => ({ wave, size, done, blocked, failed }));
    return { wallMs, stage, summary, idleRssMb, peakRssMb, cpu, runs, pipelineRuns: runs.filter((run) => run.workflowId === handle.workflowId).length, statusMs, statusFailures, waves };
  } finally {
    worker.child.kill('SIGTERM');
  }
}

/**
 * Every workflow run on the server, with its history length. Listing is eventually consistent, so it is repeated
 * (for up to 10 s) until it holds as many pipeline runs as the pipeline's own status counted (`run`).
 */
async function everyRun(client: Client, pipelineId: string, pipelineRuns: number): Promise<RolloutMeasurement['runs']> {
  let listed: { workflowId: string; runId: string }[] = [];
  for (let attempt = 0; attempt < 20; attempt++) {
    listed = [];
    for await (const execution of client.workflow.list()) listed.push({ workflowId: execution.workflowId, runId: execution.runId });
    if (listed.filter((run) => run.workflowId === pipelineId).length >= pipelineRuns) break;
    await sleep(500);
  }
  const runs: RolloutMeasurement['runs'] = [];
  for (const { workflowId, runId } of listed) {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    runs.push({ workflowId, runId, events: history.events?.length ?? 0 });
  }
  return runs;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
