// `-- dbchange:requires-backfill NAME`: a migration runs on a database only once that backfill finished there. The
// pipeline waits (it does not block): the backfill is progress, not a failure. It looks again when a backfill
// signals that it finished, or after a fallback timer that slows down to BACKOFF_CEILING_MS; a person may abort.
import { condition, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { DbChangeActivities } from '../activities';
import type { BackfillWait } from '../activities/backfills';
import { backfillFinished } from './messages';
import { CHECK_ACTIONS, endAborted, resolvable, type PipelineRun } from './pipeline-desk';

const { backfillsFinishedOn } = proxyActivities<DbChangeActivities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 5, nonRetryableErrorTypes: ['ConfigError', 'InvalidBackfill'] },
});

const BACKOFF_CEILING_MS = 10 * 60_000;

/** Counts the `backfillFinished` signals, so a wait wakes on one that came while it looked. */
export class BackfillWakeups {
  private count = 0;

  install(): void {
    setHandler(backfillFinished, () => void this.count++);
  }

  get seen(): number {
    return this.count;
  }
}

/**
 * Returns 'finished' once every backfill `names` lists finished on `target`'s environment; the status says where
 * each stands meanwhile. A wait can last days: it returns 'hand-over' when `runIsFull` says this run should continue
 * as new, and the next run lists the database again and goes on waiting.
 */
export async function waitForBackfills(
  run: PipelineRun,
  wakeups: BackfillWakeups,
  wait: { target: string; names: string[]; recheckMs: number; fileName: string },
  runIsFull: () => boolean,
): Promise<'finished' | 'hand-over'> {
  const { target, names, fileName } = wait;
  let intervalMs = wait.recheckMs;
  for (;;) {
    const seen = wakeups.seen;
    const waits = (await resolvable(run, target, CHECK_ACTIONS, () => backfillsFinishedOn({ target, names }))) ?? [];
    const open = waits.filter((wait) => !wait.finished);
    if (open.length === 0) return 'finished';
    const message = `${fileName} waits for ${open.map(describeWait).join('; ')}`;
    run.board.show('waiting-backfill', target, `${message}; to stop waiting: \`dbchange resolve ${workflowInfo().workflowId} --as USER --action abort\``);
    const offer = run.desk.offerStop(target);
    try {
      await condition(() => wakeups.seen !== seen || offer.decision() !== undefined, intervalMs);
    } finally {
      offer.withdraw();
    }
    const stop = offer.decision();
    if (stop) await endAborted(run.board, target, stop, message);
    if (runIsFull()) return 'hand-over';
    intervalMs = Math.min(BACKOFF_CEILING_MS, intervalMs * 2);
  }
}

function describeWait(wait: BackfillWait): string {
  const start = `\`dbchange backfill start ${wait.name} --env ${wait.environment}\``;
  if (wait.state === 'not-started') return `backfill ${wait.name} on ${wait.target}, not started (start it with ${start})`;
  if (wait.state === 'cancelled' || wait.state === 'aborted') return `backfill ${wait.name} on ${wait.target}, ${wait.state} (start it again with ${start})`;
  return `backfill ${wait.name} on ${wait.target}, ${wait.state}${wait.progress ? `: ${wait.progress}` : ''}`;
}
