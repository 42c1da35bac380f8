import { describe, expect, it } from 'vitest';
import { FleetTargetCache, FleetTargetNotListedError } from '../../activities/fleet-source';
import type { FleetTarget } from '../../core/fleet-source';

const target = (name: string): FleetTarget => ({ name, url: `postgres://app:pw@${name}/app`, database: 'main' });

/** A source whose listing the test changes, counting how often it is read. */
function fakeSource(names: string[]) {
  const source = { names, reads: 0, fail: false };
  const load = async (environment: string) => {
    source.reads++;
    if (source.fail) throw new Error(`registry of ${environment} unreachable`);
    return source.names.map(target);
  };
  return { source, load };
}

describe('FleetTargetCache', () => {
  it('reads the source once for many lookups within the TTL, and again after it', async () => {
    let clock = 0;
    const { source, load } = fakeSource(['cell-1', 'cell-2']);
    const cache = new FleetTargetCache(load, 30_000, () => clock);
    const found = await Promise.all([cache.lookup('cells', 'cell-1'), cache.lookup('cells', 'cell-2'), cache.targets('cells')]);
    expect(found[0].name).toBe('cell-1');
    expect(source.reads).toBe(1);
    clock = 30_000;
    await cache.lookup('cells', 'cell-1');
    expect(source.reads).toBe(2);
  });

  it('re-reads once when a target is missing from a cached list, and finds a target added since', async () => {
    const { source, load } = fakeSource(['cell-1']);
    const cache = new FleetTargetCache(load, 30_000, () => 0);
    await cache.targets('cells');
    source.names = ['cell-1', 'cell-2'];
    expect((await cache.lookup('cells', 'cell-2')).name).toBe('cell-2');
    expect(source.reads).toBe(2);
  });

  it('says a target is no longer listed, naming target and environment but no URL', async () => {
    const { source, load } = fakeSource(['cell-1']);
    const cache = new FleetTargetCache(load, 30_000, () => 0);
    const error = await cache.lookup('cells', 'cell-042').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(FleetTargetNotListedError);
    expect((error as Error).message).toMatch(/^target cell-042 is no longer listed by fleet\.source of environment cells; /);
    expect((error as Error).message).not.toContain('postgres://');
    // A fresh read that misses is final: no second read.
    expect(source.reads).toBe(1);
  });

  it('does not keep a failed read', async () => {
    const { source, load } = fakeSource(['cell-1']);
    const cache = new FleetTargetCache(load, 30_000, () => 0);
    source.fail = true;
    await expect(cache.targets('cells')).rejects.toThrow('registry of cells unreachable');
    source.fail = false;
    expect(await cache.targets('cells')).toHaveLength(1);
    expect(source.reads).toBe(2);
  });

  it('keeps environments apart', async () => {
    const { source, load } = fakeSource(['cell-1']);
    const cache = new FleetTargetCache(load, 30_000, () => 0);
    await cache.targets('cells');
    await cache.targets('canaries');
    expect(source.reads).toBe(2);
    cache.forget('cells');
    await cache.targets('canaries');
    await cache.targets('cells');
    expect(source.reads).toBe(3);
  });
});
