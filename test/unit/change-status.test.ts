import { describe, expect, it } from 'vitest';
import { approvalWaitText } from '../../core/change-status';

const CHECKSUM = '5f1c0e9a2b7d'.padEnd(64, '0');

describe('approvalWaitText', () => {
  it('names every role, the two-person rule and the checksum before anyone approved', () => {
    expect(approvalWaitText([{ role: 'eoc' }, { role: 'manager' }], 'msmiley', CHECKSUM)).toBe(
      'waiting for approval by eoc and manager (different people, not msmiley) of checksum 5f1c0e9a2b7d',
    );
  });

  it('once one role is approved, waits only for the others and says who approved it', () => {
    expect(approvalWaitText([{ role: 'eoc', by: 'alice' }, { role: 'manager' }], 'msmiley', CHECKSUM)).toBe(
      'waiting for approval by manager (eoc approved by alice; different people, not msmiley) of checksum 5f1c0e9a2b7d',
    );
  });

  it('with a single role, leaves out the two-person rule', () => {
    expect(approvalWaitText([{ role: 'reviewer' }], 'ann', CHECKSUM)).toBe('waiting for approval by reviewer (not ann) of checksum 5f1c0e9a2b7d');
  });
});
