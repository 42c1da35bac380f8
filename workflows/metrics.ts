// Workflow-side dbchange metrics: the SDK's workflow meter skips them while replaying, so each is counted once.
import { metricMeter } from '@temporalio/workflow';
import { METRIC } from '../core/metric-names';

export function countPipelineBlocked(environment: string): void {
  metricMeter.createCounter(METRIC.pipelinesBlocked, 'blocks', 'pipelines stopped for a person after a failure').add(1, { environment });
}

export function recordApprovalWait(environment: string, waitedMs: number, outcome: 'approved' | 'rejected' | 'timed-out'): void {
  metricMeter.createHistogram(METRIC.approvalWait, 'int', 'ms', 'time from an approval gate to its outcome').record(waitedMs, { environment, outcome });
}

/** A fleet target's end in a rollout: done, blocked (failed, for a person to decide) or failed (given up). */
export function countFleetTarget(environment: string, outcome: 'done' | 'blocked' | 'failed'): void {
  metricMeter.createCounter(METRIC.fleetTargets, 'targets', 'fleet targets by how their rollout ended').add(1, { environment, outcome });
}

/** A backfill batch done: the rows it changed, and how far through the key range the backfill now is. */
export function recordBackfillProgress(environment: string, backfill: string, rows: number, percent: number): void {
  metricMeter.createCounter(METRIC.backfillRows, 'rows', 'rows changed by backfill batches').add(rows, { environment, backfill });
  metricMeter.createGauge(METRIC.backfillProgress, 'float', '%', 'percent of the key range a backfill has done').set(percent, { environment, backfill });
}
