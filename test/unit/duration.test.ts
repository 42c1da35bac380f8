import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../core/duration';

describe('parseDuration', () => {
  it.each([
    ['200ms', 200],
    ['30s', 30_000],
    ['15m', 900_000],
    ['24h', 86_400_000],
    ['7d', 604_800_000],
    ['0s', 0],
  ])('reads %s as %i milliseconds', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it('reads fractional amounts and rounds to whole milliseconds', () => {
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(parseDuration('0.5s')).toBe(500);
    expect(parseDuration('1.0004s')).toBe(1_000);
  });

  it('tolerates surrounding spaces and a space before the unit', () => {
    expect(parseDuration('  30s ')).toBe(30_000);
    expect(parseDuration('30 s')).toBe(30_000);
  });

  it.each(['', '15', 'm', '15min', '-5s', '1e3ms', '15M', '1h30m', '1,5h', 'soon', '.5s'])(
    'refuses %j as not a duration',
    (text) => {
      expect(parseDuration(text)).toBeUndefined();
    },
  );
});

describe('formatDuration', () => {
  it.each([
    [0, '0ms'],
    [850, '850ms'],
    [999.4, '999ms'],
    [1_000, '1.0s'],
    [12_345, '12.3s'],
    [60_000, '1m 00s'],
    [245_000, '4m 05s'],
    [3_599_400, '59m 59s'],
    [3_600_000, '1h 00m'],
    [7_800_000, '2h 10m'],
    [90_000_000, '25h 00m'],
  ])('formats %d ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('rounds the last seconds of an hour up into hours instead of showing 60m', () => {
    expect(formatDuration(3_599_600)).toBe('1h 00m');
  });

  it('formats a parsed config duration the way a person reads it', () => {
    expect(formatDuration(parseDuration('15m')!)).toBe('15m 00s');
    expect(formatDuration(parseDuration('200ms')!)).toBe('200ms');
  });
});
