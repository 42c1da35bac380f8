import { describe, expect, it } from 'vitest';
import { compareSnapshots, describeDrift, describeRegularDrift } from '../../core/drift';

describe('compareSnapshots', () => {
  const postDeploy = new Set(['20230109100044']);
  const staging = {
    versions: ['20230109095622', '20230109100044'],
    catalog: { 'column public.plan_limits.web_hook_calls_high': 'integer', 'index public.idx': 'CREATE INDEX idx ON public.t USING btree (a) (INVALID)' },
    parents: {},
  };
  const production = {
    versions: ['20230109095622'],
    catalog: { 'column public.plan_limits.web_hook_calls': 'integer', 'index public.idx': 'CREATE INDEX idx ON public.t USING btree (a)' },
    parents: {},
  };

  it('splits versions by the post-deploy folder and lists catalog differences either way', () => {
    const report = compareSnapshots('staging', staging, 'production', production, postDeploy);
    expect(report.regular).toEqual({ onlyInFirst: [], onlyInSecond: [] });
    expect(report.postDeploy).toEqual({ onlyInFirst: ['20230109100044'], onlyInSecond: [] });
    expect(describeDrift(report)).toEqual([
      'post-deploy migration 20230109100044 ran on staging but not on production',
      'column public.plan_limits.web_hook_calls only on production: integer',
      'column public.plan_limits.web_hook_calls_high only on staging: integer',
      'index public.idx differs: staging has CREATE INDEX idx ON public.t USING btree (a) (INVALID); production has CREATE INDEX idx ON public.t USING btree (a)',
    ]);
    expect(describeRegularDrift(report)).toEqual([]);
  });

  it('reports a regular migration missing on one side for the pipeline', () => {
    const report = compareSnapshots('staging', { versions: ['1', '2'], catalog: {}, parents: {} }, 'production', { versions: ['1', '3'], catalog: {}, parents: {} }, new Set());
    expect(describeRegularDrift(report)).toEqual(['regular migration 2 ran on staging but not on production', 'regular migration 3 ran on production but not on staging']);
  });
});
