import { describe, expect, it } from 'vitest';
import { fleetSchema, isTargetName, planWaves, planWavesForNames, toFleetConfig, type FleetConfig, type Wave } from '../../core/fleet';
import { describeSchemaIssues, readYamlSource } from '../../core/yaml-source';

/** Parses `fleet:` as dbchange.yaml would: problems come back with their line, as the config loader prints them. */
function parseFleet(text: string): { config?: FleetConfig; problems: string[] } {
  const source = readYamlSource(text);
  const parsed = fleetSchema.safeParse((source.data as { fleet?: unknown }).fleet);
  if (!parsed.success) return { problems: describeSchemaIssues(parsed.error.issues, source, ['fleet']) };
  return { config: toFleetConfig(parsed.data, '/project'), problems: [] };
}

const sizes = (targetCount: number, waves: Wave[]) => planWaves(targetCount, waves).map(({ start, end }) => end - start);

describe('fleet configuration', () => {
  it('parses the documented example with the file resolved against the config folder and durations in milliseconds', () => {
    const { config } = parseFleet(`fleet:
  source:
    file: cells.yaml
  waves: [{count: 1}, {percent: 10}, {percent: 100}]
  concurrency: 16
  haltAfterFailures: 2
  approvalBetweenWaves: { roles: [release-manager], timeout: 2h }
`);
    expect(config).toEqual({
      source: { kind: 'file', file: '/project/cells.yaml' },
      waves: [{ count: 1 }, { percent: 10 }, { percent: 100 }],
      concurrency: 16,
      haltAfterFailures: 2,
      approvalBetweenWaves: { roles: ['release-manager'], timeoutMs: 7_200_000 },
    } satisfies FleetConfig);
  });

  it('fills the defaults: one canary then everything, 8 at a time, halt on the first failure, approval timeout 24h', () => {
    expect(parseFleet('fleet:\n  source: { file: /etc/cells.yaml }\n').config).toEqual({
      source: { kind: 'file', file: '/etc/cells.yaml' },
      waves: [{ count: 1 }, { percent: 100 }],
      concurrency: 8,
      haltAfterFailures: 1,
      approvalBetweenWaves: undefined,
    });
    expect(parseFleet('fleet:\n  source: { file: c.yaml }\n  approvalBetweenWaves: { roles: [eoc] }\n').config?.approvalBetweenWaves).toEqual({
      roles: ['eoc'],
      timeoutMs: 86_400_000,
    });
  });

  it('accepts a registry query with its URL', () => {
    const { config } = parseFleet('fleet:\n  source:\n    query: SELECT name, url FROM cells\n    registryUrl: postgres://registry/db\n');
    expect(config?.source).toEqual({ kind: 'query', query: 'SELECT name, url FROM cells', registryUrl: 'postgres://registry/db' });
  });

  it('wants exactly one source: a file, or a query with its registry', () => {
    expect(parseFleet('fleet:\n  source: {}\n').problems).toEqual(['line 2: fleet.source: set file (a YAML list of targets), or query and registryUrl']);
    expect(parseFleet('fleet:\n  source:\n    file: a.yaml\n    query: SELECT 1\n').problems).toEqual(['line 3: fleet.source: use file, or query with registryUrl, not both']);
    expect(parseFleet('fleet:\n  source:\n    query: SELECT name, url FROM cells\n').problems).toEqual([
      'line 3: fleet.source.registryUrl: missing: the query needs registryUrl, usually ${REGISTRY_URL}',
    ]);
    expect(parseFleet('fleet:\n  source:\n    registryUrl: postgres://r/db\n').problems).toEqual([
      'line 3: fleet.source.query: missing: registryUrl needs a query that lists the targets',
    ]);
    expect(parseFleet('fleet:\n  source: { file: a.yaml, url: x }\n').problems).toEqual(['line 2: fleet.source.url: unknown key (check its spelling)']);
  });

  it('wants each wave to be either a count or a percent, within range', () => {
    const { problems } = parseFleet(`fleet:
  source: { file: a.yaml }
  waves:
    - {count: 0}
    - {percent: 0}
    - {count: 2, percent: 50}
    - {}
    - {percent: 101}
    - {count: 1.5}
`);
    expect(problems).toEqual([
      'line 4: fleet.waves.0.count: count must be at least 1',
      'line 5: fleet.waves.1.percent: percent must be above 0',
      'line 6: fleet.waves.2: a wave is {count: N} or {percent: P}, not both',
      'line 7: fleet.waves.3: a wave is {count: N} or {percent: P}: set one of them',
      'line 8: fleet.waves.4.percent: percent must be at most 100',
      'line 9: fleet.waves.5.count: count must be a whole number',
    ]);
  });

  it('refuses waves that could never run: a percent that does not grow, anything after 100 %, no waves at all', () => {
    expect(parseFleet('fleet:\n  source: { file: a.yaml }\n  waves: [{percent: 50}, {percent: 10}]\n').problems).toEqual([
      "line 3: fleet.waves.1.percent: 10 is not above an earlier wave's 50: percents are cumulative (until P % of all targets)",
    ]);
    expect(parseFleet('fleet:\n  source: { file: a.yaml }\n  waves: [{percent: 100}, {count: 5}]\n').problems).toEqual([
      'line 3: fleet.waves.1: comes after {percent: 100}, which already covers every target',
    ]);
    expect(parseFleet('fleet:\n  source: { file: a.yaml }\n  waves: []\n').problems).toEqual([
      'line 3: fleet.waves: list at least one wave, e.g. [{count: 1}, {percent: 100}]',
    ]);
  });

  it('bounds concurrency to 1..256 and haltAfterFailures to at least 1, and checks the approval timeout', () => {
    const { problems } = parseFleet(`fleet:
  source: { file: a.yaml }
  concurrency: 257
  haltAfterFailures: 0
  approvalBetweenWaves: { roles: [], timeout: soon }
`);
    expect(problems).toEqual([
      'line 3: fleet.concurrency: concurrency must be at most 256',
      'line 4: fleet.haltAfterFailures: haltAfterFailures must be at least 1',
      'line 5: fleet.approvalBetweenWaves.roles: name at least one role, e.g. [release-manager]',
      'line 5: fleet.approvalBetweenWaves.timeout: expected a duration such as 30m, 24h, 7d',
    ]);
    expect(parseFleet('fleet:\n  source: { file: a.yaml }\n  concurrency: 0\n').problems).toEqual(['line 3: fleet.concurrency: concurrency must be at least 1']);
  });
});

describe('target names', () => {
  it('accepts lowercase names with digits, dots, dashes and underscores, up to 63 characters', () => {
    for (const name of ['cell-042', '0cell', 'eu.west_1', 'a'.repeat(63)]) expect(isTargetName(name), name).toBe(true);
  });

  it('refuses names that would break an address such as cells/cell-042', () => {
    for (const name of ['', 'cells/cell-042', 'Cell', '-cell', '.cell', 'cell 1', 'a'.repeat(64)]) expect(isTargetName(name), name).toBe(false);
  });
});

describe('planWaves', () => {
  it('covers 1000 targets as 1, 99 and 900: percents count the whole fleet, cumulatively', () => {
    expect(planWaves(1000, [{ count: 1 }, { percent: 10 }, { percent: 100 }])).toEqual([
      { start: 0, end: 1 },
      { start: 1, end: 100 },
      { start: 100, end: 1000 },
    ]);
  });

  it('plans nothing for an empty fleet', () => {
    expect(planWaves(0, [{ count: 1 }, { percent: 100 }])).toEqual([]);
  });

  it('puts a single target in the first wave only', () => {
    expect(planWaves(1, [{ count: 1 }, { percent: 10 }, { percent: 100 }])).toEqual([{ start: 0, end: 1 }]);
    expect(planWaves(1, [{ percent: 10 }, { percent: 100 }])).toEqual([{ start: 0, end: 1 }]);
  });

  it('drops a percent wave that rounds to targets already covered', () => {
    // 10 % of 5 is 0.5, rounded up to 1: the canary already covers it.
    expect(sizes(5, [{ count: 1 }, { percent: 10 }, { percent: 100 }])).toEqual([1, 4]);
  });

  it('rounds a percent up, so a small percent of a small fleet still takes one target', () => {
    expect(sizes(7, [{ percent: 1 }, { percent: 50 }, { percent: 100 }])).toEqual([1, 3, 3]);
  });

  it('does not let floating point round 64.4 % of 250 up to 162', () => {
    expect(sizes(250, [{ percent: 64.4 }, { percent: 100 }])).toEqual([161, 89]);
  });

  it('stops a count at the end of the fleet and drops the waves after it', () => {
    expect(sizes(3, [{ count: 5 }, { percent: 100 }])).toEqual([3]);
    expect(sizes(10, [{ count: 2 }, { count: 20 }, { count: 1 }])).toEqual([2, 8]);
  });

  it('adds a final wave for the targets the configured waves leave out', () => {
    expect(sizes(100, [{ count: 1 }, { percent: 10 }])).toEqual([1, 9, 90]);
  });

  it('puts every target in exactly one wave, in order', () => {
    const waves: Wave[] = [{ count: 3 }, { percent: 5 }, { count: 10 }, { percent: 33.3 }, { percent: 90 }];
    for (const total of [0, 1, 2, 9, 10, 11, 99, 100, 101, 997, 10_000]) {
      const ranges = planWaves(total, waves);
      expect(ranges.flatMap(({ start, end }) => Array.from({ length: end - start }, (_, i) => start + i))).toEqual(Array.from({ length: total }, (_, i) => i));
      expect(ranges.every(({ start, end }) => end > start)).toBe(true);
    }
  });
});

describe('planWavesForNames', () => {
  it('keeps the source order of the names: never sorted', () => {
    expect(planWavesForNames(['cell-9', 'cell-1', 'cell-5', 'cell-3'], [{ count: 1 }, { percent: 50 }])).toEqual([['cell-9'], ['cell-1'], ['cell-5', 'cell-3']]);
  });
});
