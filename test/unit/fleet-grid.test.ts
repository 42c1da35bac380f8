import { describe, expect, it } from 'vitest';
import { fleetGrid } from '../../core/fleet-grid';
import { startFleetState } from '../../core/fleet-progress';
import { planWaves } from '../../core/waves';

const TARGETS = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
const states = (grid: ReturnType<typeof fleetGrid>) => grid.waves.map((wave) => wave.targets.map((target) => `${target.name}:${target.state}`).join(' '));

describe('fleet grid', () => {
  it('gives every target one state, wave by wave: done, running, blocked, given up, retried and not yet started', () => {
    const state = startFleetState(TARGETS, 'digest', planWaves(TARGETS.length, [{ count: 2 }, { count: 4 }, { percent: 100 }]));
    // Wave 1 ended with b given up; wave 2 has started c, d, e and f.
    state.failed.push({ target: 'b', error: 'gone', wave: 0 });
    state.wave = 1;
    state.next = 6;
    state.blocked.push({ target: 'd', error: 'ERROR 42P07', wave: 1 });
    state.requeued.push('f');
    const grid = fleetGrid('cells', state, ['e']);
    expect(grid.environment).toBe('cells');
    expect(grid.wave).toBe(2);
    expect(states(grid)).toEqual(['a:done b:failed', 'c:done d:blocked e:running f:pending', 'g:pending h:pending']);
  });

  it('shows a finished rollout as done, and a fresh one as pending', () => {
    const fresh = startFleetState(TARGETS.slice(0, 3), 'digest', planWaves(3, [{ count: 1 }, { percent: 100 }]));
    expect(states(fleetGrid('cells', fresh, []))).toEqual(['a:pending', 'b:pending c:pending']);
    const finished = { ...fresh, wave: 2, next: 3 };
    expect(states(fleetGrid('cells', finished, []))).toEqual(['a:done', 'b:done c:done']);
    expect(fleetGrid('cells', finished, []).wave).toBe(2);
  });
});
