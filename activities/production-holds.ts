// Waiting for production checks that costs nothing: the activity hands its wait to this watcher and completes
// asynchronously, so a hold of days adds no history events and holds no worker slot. The watcher re-checks the
// moment a holder lets go (an incident closed, a critical change done) or a change lock ends, and otherwise
// re-checks with backoff, from productionChecks.recheckInterval up to RECHECK_CAP_MS.
import { ActivityCancelledError, ActivityNotFoundError, type Client } from '@temporalio/client';
import { holdProgress } from '../core/step-progress';
import type { ChangeLockWindow } from '../core/config';
import { holderReleased, runProductionChecks, type ProductionCheckResult } from './production-checks';

/** A slow fallback for anything the watch misses (a holder that appeared since the last full check). */
export const RECHECK_CAP_MS = 15 * 60_000;
/** How often the holders are asked whether they still hold: one describe call each, no history. */
const WATCH_EVERY_MS = 2_000;
/** Async activities prove they are alive by heartbeat; the workflow's heartbeatTimeout is a minute. */
const HEARTBEAT_EVERY_MS = 15_000;

export interface HoldRequest {
  environment: string;
  firstIntervalMs: number;
  /** The reasons the workflow shows already: only a change of them is reported. */
  why: string;
  /** Echoed in progress reports, so the workflow can tell this wait from an earlier one. */
  wait: string;
}

export interface Hold extends HoldRequest {
  client: Client;
  taskToken: Uint8Array;
  workflow: { workflowId: string; runId: string };
}

export class HoldWatcher {
  private closed = false;

  constructor(private readonly changeLocks: ChangeLockWindow[]) {}

  /** Takes over the calling activity's wait; the activity then returns with CompleteAsyncError. */
  watch(hold: Hold): void {
    // Should the watch fail (Temporal or visibility unreachable), its heartbeats stop and Temporal runs the
    // activity again, which watches anew: nothing is lost but a minute.
    void this.follow(hold).catch(() => undefined);
  }

  /** On worker shutdown: stop watching; the activities time out on their heartbeat and run again elsewhere. */
  close(): void {
    this.closed = true;
  }

  private async follow(hold: Hold): Promise<void> {
    let intervalMs = hold.firstIntervalMs;
    let lastWhy = hold.why;
    let lastHeartbeat = Date.now();
    for (;;) {
      const checks = await runProductionChecks(hold.client, hold.environment, this.changeLocks, hold.workflow.workflowId);
      if (checks.ok) {
        await hold.client.activity.complete(hold.taskToken, checks);
        return;
      }
      const why = checks.reasons.join('; ');
      if (why !== lastWhy) {
        lastWhy = why;
        await hold.client.workflow.getHandle(hold.workflow.workflowId, hold.workflow.runId).signal(holdProgress, { wait: hold.wait, why }).catch(() => undefined);
      }
      const recheckAt = Date.now() + Math.min(intervalMs, untilLockEnds(checks));
      intervalMs = Math.min(intervalMs * 2, RECHECK_CAP_MS);
      while (Date.now() < recheckAt) {
        if (this.closed) return;
        await sleep(Math.min(WATCH_EVERY_MS, Math.max(recheckAt - Date.now(), 0)));
        if (Date.now() - lastHeartbeat >= HEARTBEAT_EVERY_MS) {
          lastHeartbeat = Date.now();
          if (!(await stillWanted(hold))) return;
        }
        if (await anyReleased(hold.client, checks.holders)) break;
      }
    }
  }
}

function untilLockEnds(checks: ProductionCheckResult): number {
  return checks.lockEndsAt ? Math.max(Date.parse(checks.lockEndsAt) - Date.now(), 0) : Number.POSITIVE_INFINITY;
}

async function anyReleased(client: Client, holders: string[]): Promise<boolean> {
  for (const holder of holders) {
    if (await holderReleased(client, holder).catch(() => false)) return true;
  }
  return false;
}

/** False once the workflow no longer waits: it was cancelled, ended, or the activity timed out and runs elsewhere. */
async function stillWanted(hold: Hold): Promise<boolean> {
  try {
    await hold.client.activity.heartbeat(hold.taskToken, { environment: hold.environment });
    return true;
  } catch (error) {
    if (error instanceof ActivityCancelledError) {
      await hold.client.activity.reportCancellation(hold.taskToken).catch(() => undefined);
      return false;
    }
    if (error instanceof ActivityNotFoundError) return false;
    return true; // the frontend was unreachable a moment: keep watching, the next heartbeat tells
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
