import { describe, expect, it } from 'vitest';
import { assessPipelineStart, describePromotionMismatches, describeUnchecked, environmentsBefore, findPromotionMismatches, reviewEnvironment, type LedgerState } from '../../core/promotion';

const RAN = 'a'.repeat(12) + '0'.repeat(52);
const EDITED = 'b'.repeat(12) + '1'.repeat(52);
const OTHER = 'c'.repeat(64);
const file = (version: string, checksum: string, name = 'create_members') => ({ version, name, fileName: `${version}_${name}.sql`, checksum });
const ledger = (entries: [string, string][]): LedgerState => ({ versions: new Set(entries.map(([version]) => version)), checksums: new Map(entries) });
const EMPTY = ledger([]);

describe('findPromotionMismatches', () => {
  it('names a pending file whose checksum differs from what an earlier environment ran', () => {
    const pending = [file('20240601000003', EDITED)];
    expect(findPromotionMismatches('production', pending, [{ environment: 'staging', state: ledger([['20240601000003', RAN]]) }])).toEqual([
      { version: '20240601000003', fileName: '20240601000003_create_members.sql', environment: 'production', checksum: EDITED, ranOn: 'staging', ranChecksum: RAN },
    ]);
  });

  it('accepts the same bytes, and a version no earlier environment ran (or ran outside dbchange, without a checksum)', () => {
    const pending = [file('20240601000003', RAN), file('20240601000004', EDITED)];
    const staging = { versions: new Set(['20240601000003', '20240601000004']), checksums: new Map([['20240601000003', RAN]]) };
    expect(findPromotionMismatches('production', pending, [{ environment: 'staging', state: staging }])).toEqual([]);
  });

  it('checks against every earlier environment, not only the one just before', () => {
    const pending = [file('20240601000003', EDITED)];
    const earlier = [
      { environment: 'staging', state: ledger([['20240601000003', RAN]]) },
      { environment: 'canary', state: EMPTY },
    ];
    expect(findPromotionMismatches('production', pending, earlier).map((mismatch) => mismatch.ranOn)).toEqual(['staging']);
  });
});

describe('describePromotionMismatches', () => {
  it('names the file, both checksums (12 characters) and both environments, and how to fix it', () => {
    const [mismatch] = findPromotionMismatches('production', [file('20240601000003', EDITED)], [{ environment: 'staging', state: ledger([['20240601000003', RAN]]) }]);
    expect(describePromotionMismatches([mismatch])).toBe(
      'promotion refused: 20240601000003_create_members.sql would run on production as bbbbbbbbbbbb, but staging ran aaaaaaaaaaaa; ' +
        'what runs must be what ran before: restore the file as it ran on staging and put the change in a new migration',
    );
  });
});

describe('environmentsBefore', () => {
  it('is the configured order before the environment, whatever a pipeline walks', () => {
    const configured = [{ name: 'staging' }, { name: 'canary' }, { name: 'production' }];
    expect(environmentsBefore(configured, 'production').map((item) => item.name)).toEqual(['staging', 'canary']);
    expect(environmentsBefore(configured, 'staging')).toEqual([]);
  });
});

describe('reviewEnvironment', () => {
  it('reports pending (with out-of-order marks), edited and mismatched files of one environment at once', () => {
    const files = [file('20240101000000', RAN, 'late_branch'), file('20240201000000', OTHER, 'applied'), file('20240301000000', EDITED, 'promoted')];
    const own = ledger([['20240201000000', 'd'.repeat(64)]]);
    const review = reviewEnvironment(files, 'production', own, [{ environment: 'staging', state: ledger([['20240301000000', RAN]]) }]);
    expect(review.pending.map((item) => [item.version, item.outOfOrder?.newestApplied])).toEqual([
      ['20240101000000', '20240201000000'],
      ['20240301000000', undefined],
    ]);
    expect(review.edited.map((item) => item.version)).toEqual(['20240201000000']);
    expect(review.mismatches.map((item) => item.version)).toEqual(['20240301000000']);
    expect(review.outOfOrder).toEqual({ environment: 'production', newestApplied: '20240201000000', files: ['20240101000000_late_branch.sql'], count: 1 });
  });
});

describe('assessPipelineStart', () => {
  const files = [file('20240601000003', EDITED)];

  it('refuses a production-only start when staging ran other bytes', () => {
    const ledgers = [
      { environment: 'staging', state: ledger([['20240601000003', RAN]]) },
      { environment: 'production', state: EMPTY },
    ];
    const assessment = assessPipelineStart(files, ledgers, ['production'], 'warn');
    expect(assessment.refusals).toEqual([expect.stringMatching(/^promotion refused: 20240601000003_create_members\.sql would run on production as bbbbbbbbbbbb, but staging ran aaaaaaaaaaaa/)]);
    expect(assessment.unchecked).toEqual([]);
  });

  it('refuses a start over both environments for the edit on staging and the mismatch on production', () => {
    const ledgers = [
      { environment: 'staging', state: ledger([['20240601000003', RAN]]) },
      { environment: 'production', state: EMPTY },
    ];
    const { refusals } = assessPipelineStart(files, ledgers, ['staging', 'production'], 'warn');
    expect(refusals).toHaveLength(2);
    expect(refusals[0]).toMatch(/^corrupted migrations: 20240601000003_create_members\.sql changed after it was applied on staging/);
    expect(refusals[1]).toMatch(/^promotion refused: /);
  });

  it('names the ledgers it could not read and checks the rest', () => {
    const ledgers = [
      { environment: 'staging', unreadable: '${STAGING_DATABASE_URL} not set here' },
      { environment: 'production', state: EMPTY },
    ];
    const assessment = assessPipelineStart(files, ledgers, ['production'], 'warn');
    expect(assessment.refusals).toEqual([]);
    expect(assessment.unchecked).toEqual([{ environment: 'staging', reason: '${STAGING_DATABASE_URL} not set here' }]);
    expect(describeUnchecked(assessment.unchecked)).toBe(
      'could not check staging up front (staging: ${STAGING_DATABASE_URL} not set here); the pipeline checks edited files, promotion checksums and out-of-order versions before each environment',
    );
  });

  it('names an earlier environment it could not read even when the walked one is unreadable too, in config order', () => {
    const ledgers = [
      { environment: 'staging', unreadable: 'no connection' },
      { environment: 'production', unreadable: '${PRODUCTION_DATABASE_URL} not set here' },
    ];
    expect(assessPipelineStart(files, ledgers, ['production'], 'warn').unchecked.map((item) => item.environment)).toEqual(['staging', 'production']);
  });

  it('warns of out-of-order versions under warn, refuses them under refuse, and says nothing under allow', () => {
    const late = [file('20240101000000', RAN, 'late_branch'), file('20240201000000', OTHER, 'applied')];
    const ledgers = [{ environment: 'staging', state: ledger([['20240201000000', OTHER]]) }];
    expect(assessPipelineStart(late, ledgers, ['staging'], 'warn')).toEqual({
      refusals: [],
      warnings: ['out of order: 20240101000000_late_branch.sql on staging, older than applied 20240201000000; they will be applied (migrations.outOfOrder: warn)'],
      unchecked: [],
    });
    expect(assessPipelineStart(late, ledgers, ['staging'], 'refuse').refusals).toEqual([expect.stringMatching(/^out of order: 20240101000000_late_branch\.sql on staging.*\(migrations\.outOfOrder: refuse\)/)]);
    expect(assessPipelineStart(late, ledgers, ['staging'], 'allow')).toEqual({ refusals: [], warnings: [], unchecked: [] });
  });
});
