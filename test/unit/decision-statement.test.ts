import { describe, expect, it } from 'vitest';
import {
  checksumDigest,
  filesDigestText,
  parseStatement,
  shortDigest,
  statementMismatch,
  statementText,
  type DecisionStatement,
} from '../../core/decision-statement';

const DIGEST = `sha256:${'ab12'.repeat(16)}`;
const OTHER_DIGEST = `sha256:${'cd34'.repeat(16)}`;
const NOW = Date.parse('2025-06-01T12:00:00Z');

const APPROVAL: DecisionStatement = {
  version: 1,
  workflowId: 'pipeline-app',
  runId: 'run-1',
  decision: 'approve',
  gate: 'production',
  role: 'release-manager',
  user: 'alice',
  digest: DIGEST,
  expires: '2025-06-01T13:00:00Z',
};
/** What the workflow expects at that gate: the same fields, without the expiry. */
const EXPECTED: Omit<DecisionStatement, 'expires'> = withoutExpiry(APPROVAL);

function withoutExpiry(statement: DecisionStatement): Omit<DecisionStatement, 'expires'> {
  const copy: Partial<DecisionStatement> = { ...statement };
  delete copy.expires;
  return copy as Omit<DecisionStatement, 'expires'>;
}

const APPROVAL_TEXT = `dbchange decision statement v1
workflowId: pipeline-app
runId: run-1
decision: approve
gate: production
role: release-manager
user: alice
digest: ${DIGEST}
expires: 2025-06-01T13:00:00Z
`;

describe('statementText', () => {
  it('writes one key: value a line after the header, in a fixed order, ending with a newline', () => {
    expect(statementText(APPROVAL)).toBe(APPROVAL_TEXT);
  });

  it('leaves out the lines of optional fields that are not set, and keeps the order of those that are', () => {
    const resolution: DecisionStatement = { ...APPROVAL, decision: 'resolve', role: undefined, action: 'retry', target: 'tenant-7' };
    expect(statementText(resolution)).toContain('gate: production\naction: retry\ntarget: tenant-7\nuser: alice\n');
    expect(statementText(resolution)).not.toContain('role');
  });

  it('refuses a value with a line break, which could forge another line', () => {
    expect(() => statementText({ ...APPROVAL, role: 'eoc\ndigest: sha256:00' })).toThrow(/role: must not contain a line break/);
    expect(() => statementText({ ...APPROVAL, user: 'alice\r' })).toThrow(/user: must not contain a line break/);
  });

  it('refuses an empty value, a digest that is not sha256 hex and an expiry that is not UTC', () => {
    expect(() => statementText({ ...APPROVAL, gate: '' })).toThrow(/gate: must be a non-empty string/);
    expect(() => statementText({ ...APPROVAL, digest: 'abc' })).toThrow(/digest: must be sha256:/);
    expect(() => statementText({ ...APPROVAL, expires: '2025-06-01T13:00:00+02:00' })).toThrow(/expires: must be an ISO 8601 UTC time/);
  });
});

describe('parseStatement', () => {
  it('reads back what statementText wrote, with and without optional fields', () => {
    expect(parseStatement(APPROVAL_TEXT)).toEqual({ ok: true, statement: APPROVAL });
    const rejection: DecisionStatement = { version: 1, workflowId: 'cr-42', runId: 'r', decision: 'reject', gate: 'cr-42', user: 'bob', digest: OTHER_DIGEST, expires: '2025-06-01T13:00:00.123Z' };
    expect(parseStatement(statementText(rejection))).toEqual({ ok: true, statement: rejection });
  });

  it('refuses another header or version', () => {
    expect(parseStatement(APPROVAL_TEXT.replace('v1', 'v2'))).toEqual({ ok: false, error: 'line 1: expected "dbchange decision statement v1"' });
  });

  it('refuses a text without its final newline', () => {
    expect(parseStatement(APPROVAL_TEXT.trimEnd())).toMatchObject({ ok: false, error: 'the statement must end with a newline' });
  });

  it('refuses an unknown key, naming its line', () => {
    const result = parseStatement(APPROVAL_TEXT.replace('role: release-manager\n', 'role: release-manager\ncomment: hi\n'));
    expect(result).toMatchObject({ ok: false, error: expect.stringMatching(/^line 7: expected "key: value" with a known key/) });
  });

  it('refuses keys out of order and repeated keys', () => {
    const swapped = APPROVAL_TEXT.replace('workflowId: pipeline-app\nrunId: run-1\n', 'runId: run-1\nworkflowId: pipeline-app\n');
    expect(parseStatement(swapped)).toMatchObject({ ok: false, error: 'line 2: expected workflowId before runId' });
    const repeated = APPROVAL_TEXT.replace('user: alice\n', 'user: alice\nuser: mallory\n');
    expect(parseStatement(repeated)).toMatchObject({ ok: false, error: expect.stringMatching(/^line 8: user is repeated or out of order/) });
  });

  it('refuses a statement that lacks a required line, and one with a blank line', () => {
    expect(parseStatement(APPROVAL_TEXT.replace(/expires: .*\n/, ''))).toMatchObject({ ok: false, error: 'line 9: expires is missing' });
    expect(parseStatement(`${APPROVAL_TEXT}\n`)).toMatchObject({ ok: false, error: expect.stringMatching(/^line 10: expected "key: value"/) });
  });

  it('refuses a bad value, naming its line and key', () => {
    expect(parseStatement(APPROVAL_TEXT.replace('decision: approve', 'decision: allow'))).toMatchObject({ ok: false, error: 'line 4: decision: must be one of approve, reject, resolve, rollback, pause, resume, cancel' });
    expect(parseStatement(APPROVAL_TEXT.replace('role: release-manager', 'role: '))).toMatchObject({ ok: false, error: 'line 6: role: must be a non-empty string' });
    expect(parseStatement(APPROVAL_TEXT.replace('\n', '\r\n'))).toMatchObject({ ok: false });
  });
});

describe('statementMismatch', () => {
  const signed = (changes: Partial<DecisionStatement>): DecisionStatement => ({ ...APPROVAL, ...changes });

  it('accepts a statement that names exactly this decision and has not expired', () => {
    expect(statementMismatch(APPROVAL, EXPECTED, NOW)).toBeUndefined();
  });

  it('refuses a signature replayed on another workflow', () => {
    expect(statementMismatch(signed({ workflowId: 'cr-other' }), { ...EXPECTED, workflowId: 'cr-this' }, NOW)).toBe(
      'signed for workflow cr-other, not cr-this (a signature cannot be replayed on another workflow)',
    );
  });

  it('refuses a signature replayed on another run of the same workflow', () => {
    expect(statementMismatch(signed({ runId: 'run-0' }), EXPECTED, NOW)).toBe('signed for run run-0, not run-1 (a signature cannot be replayed on another run of pipeline-app)');
  });

  it('refuses another decision, gate, role, action or target', () => {
    expect(statementMismatch(signed({ decision: 'reject' }), EXPECTED, NOW)).toBe('signed to reject, not to approve');
    expect(statementMismatch(signed({ gate: 'staging' }), EXPECTED, NOW)).toBe('signed for gate staging, not production');
    expect(statementMismatch(signed({ role: 'eoc' }), EXPECTED, NOW)).toBe('signed for role eoc, but this decision is for role release-manager');
    expect(statementMismatch(signed({ role: undefined }), EXPECTED, NOW)).toBe('signed for no role, but this decision is for role release-manager');
    expect(statementMismatch(signed({ action: 'abort' }), { ...EXPECTED, action: 'retry' }, NOW)).toBe('signed for action abort, but this decision is for action retry');
    expect(statementMismatch(signed({ target: 'tenant-1' }), EXPECTED, NOW)).toBe('signed for target tenant-1, but this decision is for no target');
  });

  it('refuses a statement that names another user than the one sending it', () => {
    expect(statementMismatch(APPROVAL, { ...EXPECTED, user: 'bob' }, NOW)).toBe('signed by alice but sent as bob');
  });

  it('refuses a signature over another digest, showing both short', () => {
    expect(statementMismatch(APPROVAL, { ...EXPECTED, digest: OTHER_DIGEST }, NOW)).toBe(
      'signed for digest sha256:ab12ab12ab12…, but what runs after this gate is sha256:cd34cd34cd34… (the change or the pending files changed since it was signed)',
    );
  });

  it('refuses an expired statement, and one that expires exactly now', () => {
    expect(statementMismatch(APPROVAL, EXPECTED, Date.parse('2025-06-01T14:00:00Z'))).toBe('the statement expired at 2025-06-01T13:00:00Z (sign a new one)');
    expect(statementMismatch(APPROVAL, EXPECTED, Date.parse('2025-06-01T13:00:00Z'))).toMatch(/expired/);
  });

  it('refuses an expiry more than 7 days ahead, and accepts one just under', () => {
    expect(statementMismatch(signed({ expires: '2025-06-08T12:00:01Z' }), EXPECTED, NOW)).toMatch(/expires too far ahead; at most 7 days/);
    expect(statementMismatch(signed({ expires: '2025-06-08T12:00:00Z' }), EXPECTED, NOW)).toBeUndefined();
  });

  it('names the first field that differs, in the statement order', () => {
    expect(statementMismatch(signed({ workflowId: 'x', digest: OTHER_DIGEST }), EXPECTED, NOW)).toMatch(/^signed for workflow x/);
  });
});

describe('digests', () => {
  it('shortens a digest to its algorithm and 12 hex digits', () => {
    expect(shortDigest(DIGEST)).toBe('sha256:ab12ab12ab12…');
    expect(shortDigest('abc')).toBe('abc');
  });

  it('makes a change request checksum a sha256: digest', () => {
    expect(checksumDigest('ab'.repeat(32))).toBe(`sha256:${'ab'.repeat(32)}`);
  });

  it('builds the text of pending files in a canonical order, whatever order they were listed in', () => {
    const files = [
      { version: '20250102', checksum: 'bbb' },
      { version: '20250101', checksum: 'aaa', target: 'staging/ci' },
    ];
    expect(filesDigestText(files)).toBe('20250102:bbb\nstaging/ci 20250101:aaa\n');
    expect(filesDigestText([...files].reverse())).toBe(filesDigestText(files));
    expect(filesDigestText([])).toBe('');
  });
});
