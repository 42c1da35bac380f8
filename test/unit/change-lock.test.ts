import { describe, expect, it } from 'vitest';
import { activeChangeLock } from '../../core/change-lock';
import type { ChangeLockWindow } from '../../core/config';

const freeze: ChangeLockWindow = { start: '2024-12-20T00:00:00Z', end: '2025-01-02T00:00:00Z', reason: 'year-end freeze' };
const launch: ChangeLockWindow = { start: '2025-03-01T08:00:00+02:00', end: '2025-03-01T20:00:00+02:00', reason: 'launch day' };

describe('activeChangeLock', () => {
  it('returns the window in force at the given moment', () => {
    expect(activeChangeLock([launch, freeze], new Date('2024-12-25T12:00:00Z'))).toBe(freeze);
  });

  it('returns undefined outside every window and for no windows', () => {
    expect(activeChangeLock([launch, freeze], new Date('2025-02-01T00:00:00Z'))).toBeUndefined();
    expect(activeChangeLock([], new Date('2024-12-25T12:00:00Z'))).toBeUndefined();
  });

  it('counts the start instant as locked and the end instant as free', () => {
    expect(activeChangeLock([freeze], new Date('2024-12-20T00:00:00Z'))).toBe(freeze);
    expect(activeChangeLock([freeze], new Date('2025-01-01T23:59:59.999Z'))).toBe(freeze);
    expect(activeChangeLock([freeze], new Date('2025-01-02T00:00:00Z'))).toBeUndefined();
  });

  it('compares instants, not wall-clock text, when the window has a UTC offset', () => {
    // 08:00+02:00 is 06:00Z.
    expect(activeChangeLock([launch], new Date('2025-03-01T05:59:59Z'))).toBeUndefined();
    expect(activeChangeLock([launch], new Date('2025-03-01T06:00:00Z'))).toBe(launch);
    expect(activeChangeLock([launch], new Date('2025-03-01T18:00:00Z'))).toBeUndefined();
  });

  it('returns the first listed window when several overlap', () => {
    const wholeQuarter: ChangeLockWindow = { start: '2025-01-01T00:00:00Z', end: '2025-04-01T00:00:00Z', reason: 'audit' };
    expect(activeChangeLock([wholeQuarter, launch], new Date('2025-03-01T12:00:00Z'))).toBe(wholeQuarter);
    expect(activeChangeLock([launch, wholeQuarter], new Date('2025-03-01T12:00:00Z'))).toBe(launch);
  });
});
