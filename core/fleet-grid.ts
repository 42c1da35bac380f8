// Each fleet target's state, wave by wave, for the dashboard's grid: worked out from the rollout's compact state
// when asked (a query), so the state the workflow carries does not grow by a record per target.
import type { FleetState } from './fleet-progress';

/** pending: not started yet (or retried, waiting to start again); blocked: failed, waiting for a decision; failed: given up. */
export type TargetState = 'done' | 'running' | 'pending' | 'blocked' | 'failed';

export interface FleetGrid {
  environment: string;
  /** 1-based wave being rolled out. */
  wave: number;
  waves: { wave: number; targets: { name: string; state: TargetState }[] }[];
}

export function fleetGrid(environment: string, state: FleetState, running: readonly string[]): FleetGrid {
  const runningNow = new Set(running);
  const requeued = new Set(state.requeued);
  const blocked = new Set(state.blocked.map((issue) => issue.target));
  const failed = new Set(state.failed.map((issue) => issue.target));
  const stateOf = (name: string, index: number, wave: number): TargetState => {
    if (failed.has(name)) return 'failed';
    if (wave > state.wave) return 'pending';
    // Earlier waves ended with each target done or given up.
    if (wave < state.wave) return 'done';
    if (blocked.has(name)) return 'blocked';
    if (runningNow.has(name)) return 'running';
    if (requeued.has(name) || index >= state.next) return 'pending';
    return 'done';
  };
  return {
    environment,
    wave: Math.min(state.wave, state.waves.length - 1) + 1,
    waves: state.waves.map((range, wave) => ({
      wave: wave + 1,
      targets: state.targets.slice(range.start, range.end).map((name, offset) => ({ name, state: stateOf(name, range.start + offset, wave) })),
    })),
  };
}
