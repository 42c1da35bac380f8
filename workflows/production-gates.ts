// Production checks before an environment is changed: a failing check holds the change and re-checks.
import { proxyActivities, sleep } from '@temporalio/workflow';
import type { DbChangeActivities } from '../activities';

const { checkProductionGates } = proxyActivities<DbChangeActivities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', maximumInterval: '30s' },
});

/** Returns once the checks pass; until then tells `onHold` why, worded for the status line. */
export async function waitForProductionChecks(environment: string, recheckIntervalMs: number, onHold: (why: string) => void): Promise<void> {
  for (;;) {
    const checks = await checkProductionGates(environment);
    if (checks.ok) return;
    onHold(`production checks hold ${environment}: ${checks.reasons.join('; ')} (re-checking every ${Math.round(recheckIntervalMs / 1000)}s)`);
    await sleep(recheckIntervalMs);
  }
}
