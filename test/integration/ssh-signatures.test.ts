// Signing and verifying decision statements on the real ssh-keygen, both ways: what dbchange signs, ssh-keygen
// verifies, and what ssh-keygen signs, dbchange verifies.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOfFiles, fingerprintOf, signStatement, verifyDecision, verifyStatement, type SigningKeys } from '../../activities/ssh-signatures';
import { DECISION_NAMESPACE, filesDigestText, statementText } from '../../core/decision-statement';

const STATEMENT = statementText({
  version: 1,
  workflowId: 'pipeline-app',
  runId: 'run-1',
  decision: 'approve',
  gate: 'production',
  role: 'release-manager',
  user: 'alice',
  digest: `sha256:${'ab'.repeat(32)}`,
  expires: '2030-01-01T00:00:00Z',
});

let dir: string;
const keyFile = (name: string) => join(dir, name);
const publicKey = (name: string) => readFileSync(`${keyFile(name)}.pub`, 'utf8').trim();
const fingerprintFromSshKeygen = (name: string) => /SHA256:\S+/.exec(execFileSync('ssh-keygen', ['-lf', `${keyFile(name)}.pub`], { encoding: 'utf8' }))![0];
/** Signs as a person would on another machine: ssh-keygen -Y sign on a file, leaving FILE.sig. */
function signWithSshKeygen(name: string, text: string, namespace = DECISION_NAMESPACE): string {
  const file = join(dir, `statement-${name}-${namespace}.txt`);
  writeFileSync(file, text);
  rmSync(`${file}.sig`, { force: true });
  execFileSync('ssh-keygen', ['-Y', 'sign', '-f', keyFile(name), '-n', namespace, file], { stdio: 'ignore' });
  return readFileSync(`${file}.sig`, 'utf8');
}
let keys: SigningKeys;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dbchange-ssh-test-'));
  for (const name of ['alice', 'bob', 'carol', 'chatops', 'slackbot']) {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name}@test`, '-f', keyFile(name)]);
  }
  keys = {
    approverKeys: { alice: [publicKey('alice')], bob: [publicKey('bob')], mallory: [] },
    gateways: {
      chatops: { keys: [publicKey('chatops')], actsFor: ['alice', 'bob'] },
      slackbot: { keys: [publicKey('slackbot')], actsFor: ['bob'] },
    },
  };
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('signStatement and verifyStatement interoperate with ssh-keygen', () => {
  it('signs a statement that ssh-keygen -Y verify accepts', async () => {
    const signature = await signStatement(STATEMENT, keyFile('alice'));
    expect(signature).toMatch(/^-----BEGIN SSH SIGNATURE-----\n[\s\S]+\n-----END SSH SIGNATURE-----\n$/);
    writeFileSync(join(dir, 'allowed'), `alice namespaces="${DECISION_NAMESPACE}" ${publicKey('alice')}\n`);
    writeFileSync(join(dir, 'dbchange.sig'), signature);
    const output = execFileSync('ssh-keygen', ['-Y', 'verify', '-f', join(dir, 'allowed'), '-I', 'alice', '-n', DECISION_NAMESPACE, '-s', join(dir, 'dbchange.sig')], { input: STATEMENT, encoding: 'utf8' });
    expect(output).toContain(`Good "${DECISION_NAMESPACE}" signature for alice with ED25519 key ${fingerprintFromSshKeygen('alice')}`);
  });

  it('verifies a statement signed by ssh-keygen -Y sign, naming the key and its fingerprint', async () => {
    const verdict = await verifyStatement({ text: STATEMENT, signature: signWithSshKeygen('alice', STATEMENT), principal: 'alice', keys: [publicKey('bob'), publicKey('alice')] });
    expect(verdict).toEqual({ ok: true, fingerprint: fingerprintFromSshKeygen('alice'), key: publicKey('alice') });
  });

  it('refuses a signature over other text', async () => {
    const signature = await signStatement(STATEMENT, keyFile('alice'));
    const verdict = await verifyStatement({ text: STATEMENT.replace('production', 'staging'), signature, principal: 'alice', keys: [publicKey('alice')] });
    expect(verdict).toEqual({ ok: false, reason: 'the signature does not match the statement (it was made over other text, or the text was changed)' });
  });

  it('refuses a signature made by a key that is not listed, naming only its fingerprint', async () => {
    const verdict = await verifyStatement({ text: STATEMENT, signature: signWithSshKeygen('carol', STATEMENT), principal: 'alice', keys: [publicKey('alice')] });
    expect(verdict).toEqual({ ok: false, reason: `signed with key ${fingerprintFromSshKeygen('carol')}, which is not one of the keys of alice` });
    expect(JSON.stringify(verdict)).not.toContain(publicKey('carol').split(' ')[1]);
  });

  it('refuses a signature made for another namespace', async () => {
    const verdict = await verifyStatement({ text: STATEMENT, signature: signWithSshKeygen('alice', STATEMENT, 'git'), principal: 'alice', keys: [publicKey('alice')] });
    expect(verdict).toEqual({ ok: false, reason: `the signature was made for another purpose: sign with ssh-keygen -Y sign -n ${DECISION_NAMESPACE}` });
  });

  it('refuses a truncated signature, whether its end line was kept or not', async () => {
    const signature = await signStatement(STATEMENT, keyFile('alice'));
    const lines = signature.split('\n');
    const cutInside = [lines[0], lines[1], lines[lines.length - 2], ''].join('\n');
    const withoutEnd = lines.slice(0, 3).join('\n');
    const verify = (text: string) => verifyStatement({ text: STATEMENT, signature: text, principal: 'alice', keys: [publicKey('alice')] });
    expect(await verify(cutInside)).toEqual({ ok: false, reason: 'the signature is truncated or damaged (ssh-keygen cannot read it)' });
    expect(await verify(withoutEnd)).toEqual({ ok: false, reason: 'the signature is truncated: it has no -----END SSH SIGNATURE----- line' });
  });

  it('refuses garbage, inside the armor or without it', async () => {
    const verify = (text: string) => verifyStatement({ text: STATEMENT, signature: text, principal: 'alice', keys: [publicKey('alice')] });
    expect(await verify('-----BEGIN SSH SIGNATURE-----\nAAAAbbbbccccdddd\n-----END SSH SIGNATURE-----\n')).toEqual({ ok: false, reason: 'the signature is truncated or damaged (ssh-keygen cannot read it)' });
    expect(await verify('looks good to me')).toMatchObject({ ok: false, reason: expect.stringMatching(/^not an SSH signature: expected the -----BEGIN SSH SIGNATURE-----/) });
  });

  it('refuses a 1 MB signature before running ssh-keygen', async () => {
    const huge = `-----BEGIN SSH SIGNATURE-----\n${'A'.repeat(1024 * 1024)}\n-----END SSH SIGNATURE-----\n`;
    const verdict = await verifyStatement({ text: STATEMENT, signature: huge, principal: 'alice', keys: [publicKey('alice')] });
    expect(verdict).toEqual({ ok: false, reason: 'the signature is larger than 4096 bytes; an SSH signature is under 2 KB' });
  });

  it('refuses to verify for someone without keys, saying where keys go', async () => {
    const signature = await signStatement(STATEMENT, keyFile('alice'));
    expect(await verifyStatement({ text: STATEMENT, signature, principal: 'alice', keys: [] })).toEqual({ ok: false, reason: 'alice has no keys in dbchange.yaml approvers.alice.keys' });
    expect(await verifyStatement({ text: STATEMENT, signature, principal: 'alice,*', keys: [publicKey('alice')] })).toMatchObject({ ok: false, reason: expect.stringMatching(/cannot be a signer identity/) });
  });

  it('leaves no files behind, whether the signature verifies or not', async () => {
    const privateTmp = mkdtempSync(join(dir, 'tmp-'));
    const previous = process.env.TMPDIR;
    process.env.TMPDIR = privateTmp;
    try {
      const signature = await signStatement(STATEMENT, keyFile('alice'));
      await verifyStatement({ text: STATEMENT, signature, principal: 'alice', keys: [publicKey('alice')] });
      await verifyDecision(keys, { user: 'mallory', text: STATEMENT, signature });
      expect(readdirSync(privateTmp)).toEqual([]);
    } finally {
      if (previous === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = previous;
    }
  });
});

describe('verifyDecision', () => {
  it('accepts a decision signed with the user\'s own key', async () => {
    const verdict = await verifyDecision(keys, { user: 'alice', text: STATEMENT, signature: signWithSshKeygen('alice', STATEMENT) });
    expect(verdict).toEqual({ ok: true, fingerprint: fingerprintFromSshKeygen('alice'), signer: 'alice' });
  });

  it('refuses a decision signed with another approver\'s key, naming whose it is', async () => {
    const verdict = await verifyDecision(keys, { user: 'alice', text: STATEMENT, signature: await signStatement(STATEMENT, keyFile('bob')) });
    expect(verdict).toEqual({ ok: false, reason: "signed with bob's key, not alice's" });
  });

  it('refuses a decision signed with a key nobody in dbchange.yaml has', async () => {
    const verdict = await verifyDecision(keys, { user: 'alice', text: STATEMENT, signature: await signStatement(STATEMENT, keyFile('carol')) });
    expect(verdict).toEqual({ ok: false, reason: `signed with key ${fingerprintFromSshKeygen('carol')}, which is not one of the keys of alice` });
  });

  it('accepts a gateway acting for a user it lists in actsFor', async () => {
    const verdict = await verifyDecision(keys, { user: 'alice', text: STATEMENT, signature: await signStatement(STATEMENT, keyFile('chatops')) });
    expect(verdict).toEqual({ ok: true, fingerprint: fingerprintFromSshKeygen('chatops'), signer: 'gateway chatops' });
  });

  it('refuses a gateway asserting a user outside its actsFor', async () => {
    const signature = await signStatement(STATEMENT, keyFile('chatops'));
    expect(await verifyDecision(keys, { user: 'mallory', text: STATEMENT, signature })).toEqual({ ok: false, reason: 'gateway chatops may not act for mallory (actsFor: alice, bob)' });
    const bySlackbot = await signStatement(STATEMENT, keyFile('slackbot'));
    expect(await verifyDecision(keys, { user: 'alice', text: STATEMENT, signature: bySlackbot })).toEqual({ ok: false, reason: 'gateway slackbot may not act for alice (actsFor: bob)' });
  });

  it('says when the user has no keys and no gateway acts for them', async () => {
    const verdict = await verifyDecision(keys, { user: 'mallory', text: STATEMENT, signature: await signStatement(STATEMENT, keyFile('carol')) });
    expect(verdict).toEqual({ ok: false, reason: 'mallory has no keys in dbchange.yaml approvers.mallory.keys, and no gateway acts for mallory' });
  });

  it('refuses a signature by the user\'s own key over other text', async () => {
    const signature = await signStatement(STATEMENT, keyFile('alice'));
    const verdict = await verifyDecision(keys, { user: 'alice', text: STATEMENT.replace('run-1', 'run-2'), signature });
    expect(verdict).toEqual({ ok: false, reason: 'the signature does not match the statement (it was made over other text, or the text was changed)' });
  });

  it('refuses a 1 MB signature without running ssh-keygen', async () => {
    const verdict = await verifyDecision(keys, { user: 'alice', text: STATEMENT, signature: 'x'.repeat(1024 * 1024) });
    expect(verdict).toEqual({ ok: false, reason: 'the signature is larger than 4096 bytes; an SSH signature is under 2 KB' });
  });
});

describe('signing keys', () => {
  it('says why it cannot sign with a missing key file, without a stack', async () => {
    await expect(signStatement(STATEMENT, join(dir, 'no-such-key'))).rejects.toThrow(/^ssh-keygen could not sign with .*no-such-key: /);
  });

  it('signs through ssh-agent when given the .pub file of a key the agent holds', async () => {
    const socket = join(dir, 'agent.sock');
    const agent: ChildProcess = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    try {
      for (let waited = 0; !existsSync(socket) && waited < 5_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
      const env = { ...process.env, SSH_AUTH_SOCK: socket };
      execFileSync('ssh-add', [keyFile('bob')], { env, stdio: 'ignore' });
      const signature = await signStatement(STATEMENT, `${keyFile('bob')}.pub`, env);
      expect(await verifyStatement({ text: STATEMENT, signature, principal: 'bob', keys: [publicKey('bob')] })).toMatchObject({ ok: true, fingerprint: fingerprintFromSshKeygen('bob') });
    } finally {
      agent.kill();
    }
  });

  it('gives the fingerprint ssh-keygen -l gives', async () => {
    expect(await fingerprintOf(publicKey('alice'))).toBe(fingerprintFromSshKeygen('alice'));
  });

  it('hashes the canonical text of pending files as a sha256: digest', () => {
    const files = [{ version: '2', checksum: 'b' }, { version: '1', checksum: 'a', target: 'staging/ci' }];
    expect(digestOfFiles(files)).toBe(`sha256:${createHash('sha256').update(filesDigestText(files)).digest('hex')}`);
  });
});
