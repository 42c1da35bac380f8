// Where a fleet rollout stands: the snapshot of targets it walks, its waves, and which targets are done, blocked or
// given up. The workflow keeps it, carries it when it continues as new, and the status shows a compact view of it.
import type { WaveRange } from './waves';

/** A target that failed: blocked (waiting for a decision) or given up by a person. */
export interface TargetIssue {
  target: string;
  error: string;
  /** The migration it stopped on, for mark-complete. */
  version?: string;
  /** 0-based wave it belongs to. */
  wave: number;
}

export interface FleetState {
  /** Target names as the source listed them when the rollout started; targets listed later wait for the next pipeline. */
  targets: string[];
  /** The post-deploy files every target must run (activities/fleet-rollout.ts planDigest). */
  digest: string;
  waves: WaveRange[];
  /** 0-based wave being rolled out. */
  wave: number;
  /** Index in `targets` of the next target of this wave to start. */
  next: number;
  /** Targets a person retried, started before the wave's next ones. */
  requeued: string[];
  /** Failed targets of this wave, waiting for a decision. */
  blocked: TargetIssue[];
  /** Targets a person gave up on (resolve --target X --action abort), in every wave. */
  failed: TargetIssue[];
  /** Targets done, per wave. */
  done: number[];
  /** The last wave whose between-wave approval was given (0: the first wave needs none). */
  approvedWave: number;
}

/** One wave as `pdm status` shows it. */
export interface WaveStatus {
  /** 1-based. */
  wave: number;
  size: number;
  done: number;
  running: number;
  pending: number;
  blocked: number;
  failed: number;
  /** The blocked and given-up targets by name with their error (the first SHOWN_TARGETS of each). */
  blockedTargets: TargetIssue[];
  failedTargets: TargetIssue[];
}

export interface FleetStatus {
  targets: number;
  /** 1-based wave being rolled out. */
  wave: number;
  waves: WaveStatus[];
}

/** Blocked and failed targets named per wave in the status; the counts count them all. */
export const SHOWN_TARGETS = 50;

export function startFleetState(targets: string[], digest: string, waves: WaveRange[]): FleetState {
  return { targets, digest, waves, wave: 0, next: waves[0]?.start ?? 0, requeued: [], blocked: [], failed: [], done: waves.map(() => 0), approvedWave: 0 };
}

/** Given-up targets of the current wave: they count toward haltAfterFailures. */
export function failedInWave(state: FleetState): TargetIssue[] {
  return state.failed.filter((issue) => issue.wave === state.wave);
}

/** The next target to start in this wave: a retried one first, then the wave's next; undefined when none is left. */
export function takeNextTarget(state: FleetState): string | undefined {
  const retried = state.requeued.shift();
  if (retried !== undefined) return retried;
  const range = state.waves[state.wave];
  return range && state.next < range.end ? state.targets[state.next++] : undefined;
}

export function hasTargetsToStart(state: FleetState): boolean {
  const range = state.waves[state.wave];
  return state.requeued.length > 0 || (range !== undefined && state.next < range.end);
}

/** Moves the wave's issue for `target` out of blocked or failed; the issue, if there was one. */
export function takeIssue(state: FleetState, target: string): TargetIssue | undefined {
  for (const list of [state.blocked, state.failed]) {
    const at = list.findIndex((issue) => issue.target === target);
    if (at >= 0) return list.splice(at, 1)[0];
  }
  return undefined;
}

export function fleetStatus(state: FleetState, running: number): FleetStatus {
  return {
    targets: state.targets.length,
    wave: Math.min(state.wave, state.waves.length - 1) + 1,
    waves: state.waves.map((range, index) => {
      const size = range.end - range.start;
      const blocked = index === state.wave ? state.blocked : [];
      const failed = state.failed.filter((issue) => issue.wave === index);
      const runningHere = index === state.wave ? running : 0;
      const done = state.done[index] ?? 0;
      return {
        wave: index + 1,
        size,
        done,
        running: runningHere,
        pending: Math.max(size - done - runningHere - blocked.length - failed.length, 0),
        blocked: blocked.length,
        failed: failed.length,
        blockedTargets: blocked.slice(0, SHOWN_TARGETS),
        failedTargets: failed.slice(0, SHOWN_TARGETS),
      };
    }),
  };
}
