// A fleet's waves: which of its targets each one takes. Pure and free of zod, so workflows can import it.

/** `{count: N}`: the next N targets. `{percent: P}`: the targets up to P % of the whole fleet. */
export type Wave = { count: number } | { percent: number };

/** Targets `start` (inclusive) to `end` (exclusive), in the source's order. */
export interface WaveRange {
  start: number;
  end: number;
}

/**
 * Splits `targetCount` targets into waves, cumulatively: `{count: N}` takes the next N targets, `{percent: P}`
 * takes targets until ceil(P % of all targets) are covered. Every target lands in exactly one wave; a wave that
 * would be empty (a count past the end, a percent already covered) is dropped; if the last wave stops short of
 * 100 %, the remaining targets form one final wave.
 */
export function planWaves(targetCount: number, waves: readonly Wave[]): WaveRange[] {
  const ranges: WaveRange[] = [];
  let covered = 0;
  const coverUpTo = (end: number) => {
    if (end > covered) ranges.push({ start: covered, end });
    covered = Math.max(covered, end);
  };
  for (const wave of waves) {
    coverUpTo(Math.min(targetCount, 'count' in wave ? covered + wave.count : percentOf(targetCount, wave.percent)));
  }
  coverUpTo(targetCount);
  return ranges;
}

/** The items of each wave, in the order given (the source's order: never sorted here). */
export function planWavesForNames<T>(items: readonly T[], waves: readonly Wave[]): T[][] {
  return planWaves(items.length, waves).map(({ start, end }) => items.slice(start, end));
}

function percentOf(total: number, percent: number): number {
  // 250 × 64.4 / 100 is 161.00000000000003 in floating point; without the slack, ceil would make it 162.
  return Math.ceil((total * percent) / 100 - 1e-9);
}
