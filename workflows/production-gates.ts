// Production checks before an environment is changed. A failing check holds the change: the worker watches the
// holders and completes the wait when they let go, so a hold of days costs a handful of history events.
import { proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { DbChangeActivities } from '../activities';
import { holdProgress } from '../core/step-progress';
import { formatDuration } from '../core/duration';

const { checkProductionGates } = proxyActivities<DbChangeActivities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', maximumInterval: '30s' },
});
const { awaitProductionChecks } = proxyActivities<DbChangeActivities>({
  // Completed by the worker's watcher, which heartbeats; a lost worker is noticed in a minute and the wait moves on.
  startToCloseTimeout: '30d',
  heartbeatTimeout: '1m',
  retry: { initialInterval: '1s', maximumInterval: '1m' },
});

/** Returns once the checks pass; until then tells `onHold` why, worded for the status line. */
export async function waitForProductionChecks(environment: string, recheckIntervalMs: number, onHold: (why: string) => void): Promise<void> {
  const checks = await checkProductionGates(environment);
  if (checks.ok) return;
  const wait = `${environment}@${workflowInfo().historyLength}`;
  const say = (why: string) => onHold(`production checks hold ${environment}: ${why} (re-checked the moment that ends, and at least every ${formatDuration(recheckIntervalMs)}, backing off to 15 minutes)`);
  const why = checks.reasons.join('; ');
  say(why);
  setHandler(holdProgress, (progress) => {
    if (progress.wait === wait) say(progress.why);
  });
  try {
    await awaitProductionChecks({ environment, firstIntervalMs: recheckIntervalMs, wait, why });
  } finally {
    setHandler(holdProgress, undefined);
  }
}
