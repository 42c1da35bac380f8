import { describe, expect, it } from 'vitest';
import { parseChangeRequest } from '../../core/change-request';
import { evaluateExpectation, requiredApprovals, shouldRun, stepSettings } from '../../core/change-steps';
import { changeStatusLabel, changeWorkflowId } from '../../core/change-status';
import { DEFAULT_CR_APPROVALS } from '../../core/criticality';
import { checksumRefusal } from '../../core/decisions';

const PLAN = parseChangeRequest(
  `id: when-test
title: t
criticality: C3
requestedBy: ann
environments: [staging]
steps:
  - id: orphans
    check: SELECT 1
    expect: { rows: 0 }
    onFail: continue
  - id: delete
    when: { failed: orphans }
    sql: DELETE FROM t;
  - id: celebrate
    when: { passed: orphans }
    sql: SELECT 1;
  - id: always
    sql: SELECT 2;
`,
  'when.yaml',
);

describe('change request steps', () => {
  it('runs a step with `when` only if its check ran and came out that way', () => {
    const [, remove, celebrate, always] = PLAN.steps;
    expect([remove, celebrate, always].map((step) => shouldRun(step, { orphans: 'failed' }))).toEqual([true, false, true]);
    expect([remove, celebrate, always].map((step) => shouldRun(step, { orphans: 'passed' }))).toEqual([false, true, true]);
    // A check that did not run (it was skipped itself) satisfies neither.
    expect([remove, celebrate].map((step) => shouldRun(step, {}))).toEqual([false, false]);
  });

  it.each([
    [{ rows: { op: '=', count: 0 } }, 0, null, true, '0 rows (expected 0)'],
    [{ rows: { op: '=', count: 0 } }, 1, '1', false, '1 row (expected 0)'],
    [{ rows: { op: '>', count: 0 } }, 3, '1', true, '3 rows (expected >0)'],
    [{ rows: { op: '>=', count: 10 } }, 9, '1', false, '9 rows (expected >=10)'],
    [{ rows: { op: '<', count: 2 } }, 1, '1', true, '1 row (expected <2)'],
    [{ rows: { op: '<=', count: 2 } }, 3, '1', false, '3 rows (expected <=2)'],
    [{ value: 'true' }, 1, 'true', true, 'value true (expected true)'],
    [{ value: 'true' }, 1, 'false', false, 'value false (expected true)'],
    [{ value: 'true' }, 0, null, false, 'no rows (expected true)'],
    [{ value: null }, 1, null, true, 'value NULL (expected NULL)'],
  ] as const)('evaluates %j against %i rows, first value %s', (expect_, rowCount, firstValue, passed, observed) => {
    expect(evaluateExpectation(expect_, { rowCount, firstValue })).toEqual({ passed, observed });
  });

  it('takes a step’s own timeouts first, then the CR’s lockRetry, then the project’s', () => {
    const project = { lockTimeoutMs: 200, statementTimeoutMs: 900_000, maxWaitMs: 1_800_000 };
    expect(stepSettings(project, {})).toEqual(project);
    expect(stepSettings(project, { statementTimeoutMs: 1_000, maxWaitMs: 60_000 })).toEqual({ lockTimeoutMs: 200, statementTimeoutMs: 1_000, maxWaitMs: 60_000 });
    expect(stepSettings(project, { statementTimeoutMs: 1_000 }, { lockTimeoutMs: 50, statementTimeoutMs: 5_000 })).toEqual({ lockTimeoutMs: 50, statementTimeoutMs: 5_000, maxWaitMs: 1_800_000 });
  });

  it('asks for approvals by criticality, each role once', () => {
    expect(['C1', 'C2', 'C3', 'C4'].map((level) => requiredApprovals(level as 'C1', DEFAULT_CR_APPROVALS))).toEqual([['eoc', 'manager'], ['eoc', 'manager'], ['reviewer'], []]);
    expect(requiredApprovals('C3', { ...DEFAULT_CR_APPROVALS, C3: ['reviewer', 'reviewer', 'dba'] })).toEqual(['reviewer', 'dba']);
  });

  it('accepts the checksum or a prefix of 12 or more characters, in any case', () => {
    const sum = 'ab12'.repeat(16);
    expect(checksumRefusal(sum, sum)).toBeUndefined();
    expect(checksumRefusal(sum.slice(0, 12).toUpperCase(), sum)).toBeUndefined();
    expect(checksumRefusal(undefined, sum)).toBe('name the checksum you reviewed (checksum ab12ab12ab12, from `dbchange cr validate FILE`)');
    expect(checksumRefusal('ab12ab', sum)).toBe('checksum ab12ab is too short: give at least 12 characters (ab12ab12ab12)');
    expect(checksumRefusal('ab12ab12ab13', sum)).toBe('checksum ab12ab12ab13 is not this change\'s (ab12ab12ab12): what you reviewed is not what runs; review the file again');
  });

  it('labels DbChangeStatus in seed 000’s words', () => {
    expect(['waiting-approval', 'waiting-checks', 'in-progress', 'rolling-back', 'blocked', 'complete', 'rolled-back', 'failed', 'rehearsed'].map((stage) => changeStatusLabel(stage as 'blocked'))).toEqual([
      'scheduled',
      'scheduled',
      'in-progress',
      'in-progress',
      'blocked',
      'complete',
      'rolled-back',
      'failed',
      'complete',
    ]);
    expect([changeWorkflowId('drop-fk'), changeWorkflowId('drop-fk', true)]).toEqual(['cr-drop-fk', 'cr-drop-fk-dry-run']);
  });
});
