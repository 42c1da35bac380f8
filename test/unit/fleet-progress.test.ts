import { describe, expect, it } from 'vitest';
import { ALL_BLOCKED, checkResolutionPayload, targetRefusal } from '../../core/decisions';
import { failedInWave, fleetStatus, hasTargetsToStart, SHOWN_TARGETS, startFleetState, takeIssue, takeNextTarget } from '../../core/fleet-progress';
import { planWaves } from '../../core/waves';

const TARGETS = ['a', 'b', 'c', 'd', 'e'];
const fresh = () => startFleetState(TARGETS, 'digest', planWaves(TARGETS.length, [{ count: 1 }, { percent: 100 }]));

describe('fleet progress', () => {
  it('starts the wave in source order, a retried target first, and stops at the end of the wave', () => {
    const state = fresh();
    expect(takeNextTarget(state)).toBe('a');
    expect(takeNextTarget(state)).toBeUndefined();
    expect(hasTargetsToStart(state)).toBe(false);
    state.wave = 1;
    state.next = state.waves[1].start;
    state.requeued.push('a');
    expect([takeNextTarget(state), takeNextTarget(state), takeNextTarget(state)]).toEqual(['a', 'b', 'c']);
    expect(hasTargetsToStart(state)).toBe(true);
  });

  it('counts each wave for the status: done, running, pending, blocked and given up, naming the targets', () => {
    const state = fresh();
    state.done[0] = 1;
    state.wave = 1;
    state.next = 4;
    state.done[1] = 1;
    state.blocked.push({ target: 'c', error: 'ERROR 42P07', version: '2', wave: 1 });
    state.failed.push({ target: 'b', error: 'gone', wave: 1 });
    expect(fleetStatus(state, 1)).toEqual({
      targets: 5,
      wave: 2,
      waves: [
        { wave: 1, size: 1, done: 1, running: 0, pending: 0, blocked: 0, failed: 0, blockedTargets: [], failedTargets: [] },
        { wave: 2, size: 4, done: 1, running: 1, pending: 0, blocked: 1, failed: 1, blockedTargets: [state.blocked[0]], failedTargets: [state.failed[0]] },
      ],
    });
    expect(failedInWave(state).map((issue) => issue.target)).toEqual(['b']);
  });

  it('names at most SHOWN_TARGETS blocked targets, and counts them all', () => {
    const names = Array.from({ length: SHOWN_TARGETS + 7 }, (_, index) => `t${index}`);
    const state = startFleetState(names, 'digest', planWaves(names.length, [{ percent: 100 }]));
    for (const target of names) state.blocked.push({ target, error: 'x', wave: 0 });
    const [wave] = fleetStatus(state, 0).waves;
    expect([wave.blocked, wave.blockedTargets.length]).toEqual([SHOWN_TARGETS + 7, SHOWN_TARGETS]);
  });

  it('takes a decided target out of blocked or given up', () => {
    const state = fresh();
    state.blocked.push({ target: 'a', error: 'x', wave: 0 });
    state.failed.push({ target: 'b', error: 'y', wave: 0 });
    expect(takeIssue(state, 'b')?.error).toBe('y');
    expect(takeIssue(state, 'a')?.error).toBe('x');
    expect(takeIssue(state, 'a')).toBeUndefined();
    expect([state.blocked, state.failed]).toEqual([[], []]);
  });
});

describe('decisions about fleet targets', () => {
  const choice = { blocked: ['cell-04', 'cell-09'], failed: ['cell-02'] };

  it('takes a blocked target, all-blocked, or a given-up one to retry', () => {
    expect(targetRefusal(choice, 'cell-04', 'retry')).toBeUndefined();
    expect(targetRefusal(choice, 'cell-04', 'abort')).toBeUndefined();
    expect(targetRefusal(choice, ALL_BLOCKED, 'mark-complete')).toBeUndefined();
    expect(targetRefusal(choice, 'cell-02', 'retry')).toBeUndefined();
    expect(targetRefusal(choice, undefined, 'abort')).toBeUndefined();
  });

  it('refuses, saying why: no target but retry, an unknown target, giving up twice, all-blocked with none blocked', () => {
    expect(targetRefusal(choice, undefined, 'retry')).toBe('name the target: --target NAME (blocked: cell-04, cell-09) or --target all-blocked; without --target only abort, which ends the pipeline');
    expect(targetRefusal(choice, 'cell-01', 'retry')).toBe('cell-01 is not waiting for a decision; blocked: cell-04, cell-09; given up: cell-02');
    expect(targetRefusal(choice, 'cell-02', 'abort')).toMatch(/^cell-02 was already given up/);
    expect(targetRefusal({ blocked: [], failed: ['cell-02'] }, ALL_BLOCKED, 'retry')).toBe('no target is blocked now (given up: cell-02); name one with --target');
  });

  it('carries the target in a resolution payload, and only when given', () => {
    expect(checkResolutionPayload({ user: 'alice', action: 'retry', target: 'cell-04' })).toEqual({ ok: true, value: { user: 'alice', action: 'retry', target: 'cell-04' } });
    expect(checkResolutionPayload({ user: 'alice', action: 'retry' })).toEqual({ ok: true, value: { user: 'alice', action: 'retry' } });
    expect(checkResolutionPayload({ user: 'alice', action: 'retry', target: 7 })).toEqual({ ok: false, error: '"target" must be a string' });
  });
});
