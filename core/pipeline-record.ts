// Keeping a pipeline's status compact whatever its size: counts of everything, the recent entries in full, and the
// decisions and blocks a person needs. The full per-migration record lives in each database's ledger.
import type { DecisionRecord } from './decisions';
import type { EnvironmentResult, MigrationOutcome, OutcomeCounts, TargetResult } from './pipeline';

/** Outcomes shown per environment: enough to see what just happened; `migrations status` reads any other. */
export const RECENT_OUTCOMES = 20;
/** Lint and precheck findings kept per environment. */
export const RECENT_FINDINGS = 50;
/** Refused decisions kept in full; accepted ones are all kept (each is a person's act that changed something). */
export const RECENT_REFUSALS = 100;

export function emptyCounts(): OutcomeCounts {
  return { applied: 0, 'already-applied': 0, 'marked-complete': 0, skipped: 0, failed: 0 };
}

export function emptyResult(environment: string): EnvironmentResult {
  return { environment, migrations: [], counts: emptyCounts(), done: false };
}

/** Counts the outcome and keeps it among the recent ones. */
export function addOutcome(result: TargetResult, outcome: MigrationOutcome): void {
  // A status carried over from a run before `skipped` existed lacks its count.
  result.counts[outcome.outcome] = (result.counts[outcome.outcome] ?? 0) + 1;
  result.migrations = keepRecent([...result.migrations, outcome], RECENT_OUTCOMES);
}

export function keepRecent<T>(items: T[], max: number): T[] {
  return items.length > max ? items.slice(items.length - max) : items;
}

/** Every accepted decision and the most recent refusals, in their order; how many refusals were left out. */
export function compactDecisions(decisions: DecisionRecord[]): { decisions: DecisionRecord[]; dropped: number } {
  const refusals = decisions.filter((decision) => !decision.accepted);
  const dropped = Math.max(refusals.length - RECENT_REFUSALS, 0);
  if (dropped === 0) return { decisions, dropped };
  const droppedSet = new Set(refusals.slice(0, dropped));
  return { decisions: decisions.filter((decision) => !droppedSet.has(decision)), dropped };
}
