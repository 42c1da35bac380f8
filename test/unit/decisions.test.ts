import { describe, expect, it } from 'vitest';
import {
  checkApprovalPayload,
  checkRejectionPayload,
  checkResolutionPayload,
  MAX_DECISION_JSON,
  RESOLVE_ACTIONS,
  refusalReason,
  unrecordableReason,
  type ApprovalPolicy,
} from '../../core/decisions';

const ONE_MEGABYTE = 'x'.repeat(1024 * 1024);

describe('checkApprovalPayload', () => {
  it('accepts user and role, with or without a comment', () => {
    expect(checkApprovalPayload({ user: 'alice', role: 'release-manager', comment: 'QA green' })).toEqual({
      ok: true,
      value: { user: 'alice', role: 'release-manager', comment: 'QA green' },
    });
    expect(checkApprovalPayload({ user: 'alice', role: 'release-manager' })).toEqual({
      ok: true,
      value: { user: 'alice', role: 'release-manager', comment: undefined },
    });
  });

  it('drops keys it does not know instead of passing them on', () => {
    const checked = checkApprovalPayload({ user: 'alice', role: 'eoc', admin: true });
    expect(checked).toEqual({ ok: true, value: { user: 'alice', role: 'eoc', comment: undefined } });
  });

  it.each([[null], [undefined], ['alice'], [42], [true], [['alice', 'eoc']]])('refuses the non-object payload %j', (payload) => {
    expect(checkApprovalPayload(payload)).toEqual({ ok: false, error: 'expected a JSON object with user, role, comment, checksum' });
  });

  it.each([
    [{ role: 'eoc' }, '"user" is required'],
    [{ user: '', role: 'eoc' }, '"user" is required'],
    [{ user: null, role: 'eoc' }, '"user" is required'],
    [{ user: 'alice' }, '"role" is required'],
  ])('refuses %j: %s', (payload, error) => {
    expect(checkApprovalPayload(payload)).toEqual({ ok: false, error });
  });

  it.each([
    [{ user: 42, role: 'eoc' }, '"user" must be a string'],
    [{ user: 'alice', role: ['eoc'] }, '"role" must be a string'],
    [{ user: 'alice', role: 'eoc', comment: { text: 'hi' } }, '"comment" must be a string'],
    [{ user: 'alice', role: 'eoc', comment: false }, '"comment" must be a string'],
  ])('refuses a wrong type in %j', (payload, error) => {
    expect(checkApprovalPayload(payload)).toEqual({ ok: false, error });
  });

  it('reports the first bad field in user, role, comment order', () => {
    expect(checkApprovalPayload({ user: 1, role: 2, comment: 3 })).toEqual({ ok: false, error: '"user" must be a string' });
  });

  it('refuses a 1 MB comment so it never reaches workflow history', () => {
    expect(checkApprovalPayload({ user: 'alice', role: 'eoc', comment: ONE_MEGABYTE })).toEqual({
      ok: false,
      error: '"comment" is longer than 2000 characters',
    });
    expect(checkApprovalPayload({ user: ONE_MEGABYTE, role: 'eoc' })).toEqual({
      ok: false,
      error: '"user" is longer than 2000 characters',
    });
  });

  it('accepts exactly 2000 characters and refuses 2001', () => {
    expect(checkApprovalPayload({ user: 'alice', role: 'eoc', comment: 'y'.repeat(2000) }).ok).toBe(true);
    expect(checkApprovalPayload({ user: 'alice', role: 'eoc', comment: 'y'.repeat(2001) }).ok).toBe(false);
  });
});

describe('checkRejectionPayload', () => {
  it('accepts a user and a reason', () => {
    expect(checkRejectionPayload({ user: 'bob', reason: 'QA found a regression' })).toEqual({
      ok: true,
      value: { user: 'bob', reason: 'QA found a regression' },
    });
  });

  it('requires a reason', () => {
    expect(checkRejectionPayload({ user: 'bob' })).toEqual({ ok: false, error: '"reason" is required' });
  });

  it('refuses a non-object payload naming the fields it expects', () => {
    expect(checkRejectionPayload('no')).toEqual({ ok: false, error: 'expected a JSON object with user, reason' });
  });

  it('refuses a 1 MB reason', () => {
    expect(checkRejectionPayload({ user: 'bob', reason: ONE_MEGABYTE })).toEqual({
      ok: false,
      error: '"reason" is longer than 2000 characters',
    });
  });
});

describe('checkResolutionPayload', () => {
  it.each(RESOLVE_ACTIONS)('accepts the action %s', (action) => {
    expect(checkResolutionPayload({ user: 'alice', action })).toEqual({
      ok: true,
      value: { user: 'alice', action, comment: undefined },
    });
  });

  it('offers exactly retry, mark-complete, rollback, abort and skip-batch (backfills)', () => {
    expect(RESOLVE_ACTIONS).toEqual(['retry', 'mark-complete', 'rollback', 'abort', 'skip-batch']);
  });

  it('refuses an unknown action and lists the allowed ones', () => {
    expect(checkResolutionPayload({ user: 'alice', action: 'skip' })).toEqual({
      ok: false,
      error: '"action" must be one of retry, mark-complete, rollback, abort, skip-batch; got "skip"',
    });
  });

  it('refuses an action the blocked step does not offer', () => {
    expect(checkResolutionPayload({ user: 'alice', action: 'rollback' }, ['retry', 'abort'])).toEqual({
      ok: false,
      error: '"action" must be one of retry, abort; got "rollback"',
    });
    expect(checkResolutionPayload({ user: 'alice', action: 'abort' }, ['retry', 'abort']).ok).toBe(true);
  });

  it('checks the payload shape before the action', () => {
    expect(checkResolutionPayload({ action: 'retry' })).toEqual({ ok: false, error: '"user" is required' });
    expect(checkResolutionPayload({ user: 'alice' })).toEqual({ ok: false, error: '"action" is required' });
    expect(checkResolutionPayload({ user: 'alice', action: 7 })).toEqual({ ok: false, error: '"action" must be a string' });
  });

  it('refuses a 1 MB comment on a resolution', () => {
    expect(checkResolutionPayload({ user: 'alice', action: 'retry', comment: ONE_MEGABYTE })).toEqual({
      ok: false,
      error: '"comment" is longer than 2000 characters',
    });
  });
});

describe('refusalReason', () => {
  const policy: ApprovalPolicy = {
    approvers: { alice: ['release-manager', 'eoc'], bob: ['manager'], carol: ['release-manager'], dave: [] },
    roles: ['release-manager'],
    requestedBy: 'carol',
  };

  it('lets a configured approver approve in a role they hold and the gate accepts', () => {
    expect(refusalReason(policy, 'alice', 'release-manager')).toBeUndefined();
  });

  it('refuses an unknown approver and says where to add them', () => {
    expect(refusalReason(policy, 'mallory', 'release-manager')).toBe(
      'mallory is not a configured approver (add them under approvers in dbchange.yaml)',
    );
  });

  it('refuses a role the user does not hold and lists the roles they do', () => {
    expect(refusalReason(policy, 'bob', 'release-manager')).toBe('bob does not hold the role release-manager (holds: manager)');
    expect(refusalReason(policy, 'dave', 'release-manager')).toBe('dave does not hold the role release-manager (holds: none)');
  });

  it('refuses a role the user holds but the gate does not accept', () => {
    expect(refusalReason(policy, 'alice', 'eoc')).toBe('role eoc cannot approve this gate; it needs release-manager');
    expect(refusalReason({ ...policy, roles: ['release-manager', 'manager'] }, 'alice', 'eoc')).toBe(
      'role eoc cannot approve this gate; it needs release-manager or manager',
    );
  });

  it('refuses self-approval even in a role the requester holds', () => {
    expect(refusalReason(policy, 'carol', 'release-manager')).toBe('carol requested this change and cannot approve it');
  });

  it('refuses an unknown requester as unknown before anything else', () => {
    expect(refusalReason({ ...policy, requestedBy: 'mallory' }, 'mallory', 'release-manager')).toBe(
      'mallory is not a configured approver (add them under approvers in dbchange.yaml)',
    );
  });

  describe('without a role (reject)', () => {
    it('accepts a user who holds any role the gate needs', () => {
      expect(refusalReason({ ...policy, roles: ['manager', 'eoc'] }, 'alice')).toBeUndefined();
    });

    it('refuses a user who holds none of the roles the gate needs', () => {
      expect(refusalReason(policy, 'bob')).toBe('bob holds none of the roles this gate needs (release-manager)');
    });

    it('still refuses the requester', () => {
      expect(refusalReason(policy, 'carol')).toBe('carol requested this change and cannot approve it');
    });
  });
});

describe('unrecordableReason (what an update validator refuses before it enters history)', () => {
  it('lets every JSON object of ordinary size through, malformed or not, for the handler to refuse and record', () => {
    for (const payload of [{ user: 42, role: 'eoc' }, { role: 'eoc' }, { user: 'alice', role: 'eoc', comment: 'x'.repeat(3_000) }, { user: 'alice', action: 'explode' }, {}]) {
      expect(unrecordableReason(payload, checkApprovalPayload), JSON.stringify(payload)).toBeUndefined();
    }
  });

  it('lets through a decision whose every text field is at its limit', () => {
    const longest = 'é'.repeat(2_000);
    expect(unrecordableReason({ user: longest, role: longest, comment: longest, checksum: longest }, checkApprovalPayload)).toBeUndefined();
  });

  it.each([[null], [undefined], ['alice'], [42], [['alice', 'eoc']]])('refuses the non-object payload %j naming the fields it expects', (payload) => {
    expect(unrecordableReason(payload, checkApprovalPayload)).toBe('expected a JSON object with user, role, comment, checksum');
    expect(unrecordableReason(payload, checkRejectionPayload)).toBe('expected a JSON object with user, reason');
  });

  it('refuses a payload larger than 8 KB as JSON, saying how large it is', () => {
    expect(MAX_DECISION_JSON).toBe(8 * 1024);
    expect(unrecordableReason({ user: ONE_MEGABYTE, role: 'eoc' }, checkApprovalPayload)).toBe(
      'the payload is 1025 KB as JSON; a decision may be at most 8 KB (each text at most 2000 characters)',
    );
    expect(unrecordableReason({ user: 'alice', action: 'retry', extra: 'x'.repeat(MAX_DECISION_JSON) }, checkResolutionPayload)).toMatch(/^the payload is 9 KB as JSON/);
  });
});
