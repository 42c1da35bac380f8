import { describe, expect, it } from 'vitest';
import {
  describeOutOfOrder,
  describeRefusedOutOfOrder,
  markOutOfOrder,
  newestAppliedPostDeploy,
  outOfOrderFinding,
  OUT_OF_ORDER_FILES_SHOWN,
} from '../../core/out-of-order';

const applied = (versions: string[], ledger: string[] = []) => ({ versions: new Set(versions), checksums: new Map(ledger.map((version) => [version, 'sha'])) });
const file = (version: string, name = 'step') => ({ version, fileName: `${version}_${name}.sql` });

describe('newestAppliedPostDeploy', () => {
  it('takes the newest applied version that is a post-deploy file, ignoring newer regular migrations', () => {
    const files = ['20240101000000', '20240201000000', '20240301000000'];
    expect(newestAppliedPostDeploy(files, applied(['20240101000000', '20240201000000', '20241231000000']))).toBe('20240201000000');
  });

  it('counts a version dbchange recorded in its ledger even when its file is gone', () => {
    expect(newestAppliedPostDeploy(['20240101000000'], applied(['20240101000000', '20240501000000'], ['20240501000000']))).toBe('20240501000000');
  });

  it('has none on a database that ran no post-deploy migration', () => {
    expect(newestAppliedPostDeploy(['20240101000000'], applied(['20231231000000']))).toBeUndefined();
  });
});

describe('markOutOfOrder', () => {
  it('marks only the pending versions older than the newest applied one, with that version', () => {
    const marked = markOutOfOrder([file('20240115000000'), file('20240401000000')], '20240301000000');
    expect(marked).toEqual([{ ...file('20240115000000'), outOfOrder: { newestApplied: '20240301000000' } }, file('20240401000000')]);
  });

  it('marks nothing when nothing is applied', () => {
    expect(markOutOfOrder([file('20240115000000')], undefined)).toEqual([file('20240115000000')]);
  });
});

describe('describeOutOfOrder', () => {
  const late = (fileName: string, newestApplied = '20240301000000') => ({ fileName, outOfOrder: { newestApplied } });

  it('names each late file once, with every environment where it is late and the applied version it is older than', () => {
    const staging = outOfOrderFinding('staging', [late('20240115000000_backfill.sql'), { fileName: '20240401000000_next.sql' }])!;
    const production = outOfOrderFinding('production', [late('20240115000000_backfill.sql')])!;
    expect(staging).toEqual({ environment: 'staging', newestApplied: '20240301000000', files: ['20240115000000_backfill.sql'], count: 1 });
    expect(describeOutOfOrder([staging, production])).toBe('20240115000000_backfill.sql on staging and production, older than applied 20240301000000');
  });

  it('gives each environment its own newest version when they differ', () => {
    const staging = outOfOrderFinding('staging', [late('20240115000000_backfill.sql', '20240301000000')])!;
    const production = outOfOrderFinding('production', [late('20240115000000_backfill.sql', '20240201000000')])!;
    expect(describeOutOfOrder([staging, production])).toBe(
      '20240115000000_backfill.sql on staging (older than applied 20240301000000) and production (older than applied 20240201000000)',
    );
  });

  it('keeps a finding compact: the first files by name, and a count of the rest', () => {
    const many = Array.from({ length: OUT_OF_ORDER_FILES_SHOWN + 3 }, (_, index) => late(`202401${String(index + 10).padStart(2, '0')}000000_x.sql`));
    const finding = outOfOrderFinding('staging', many)!;
    expect(finding.files).toHaveLength(OUT_OF_ORDER_FILES_SHOWN);
    expect(finding.count).toBe(OUT_OF_ORDER_FILES_SHOWN + 3);
    expect(describeOutOfOrder([finding])).toMatch(/; and 3 more$/);
  });

  it('finds nothing when no pending file is late', () => {
    expect(outOfOrderFinding('staging', [{ fileName: '20240401000000_next.sql' }])).toBeUndefined();
  });
});

describe('describeRefusedOutOfOrder', () => {
  const finding = { environment: 'production', newestApplied: '20240301000000', files: ['20240115000000_backfill.sql'], count: 1 };

  it('in the pipeline, offers a rename and retry or mark-complete', () => {
    expect(describeRefusedOutOfOrder([finding], 'pipeline')).toBe(
      'out of order: 20240115000000_backfill.sql on production, older than applied 20240301000000 (migrations.outOfOrder: refuse); ' +
        'give it a new version (rename the file) and retry, or mark-complete to record it as done without running it',
    );
  });

  it('before a start, offers a rename or the warn policy', () => {
    expect(describeRefusedOutOfOrder([finding], 'start')).toContain('give it a new version (rename the file), or set migrations.outOfOrder: warn to apply it anyway');
  });
});
