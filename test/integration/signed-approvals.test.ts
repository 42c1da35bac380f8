// Signed approvals on the real stack: approvers' SSH keys in dbchange.yaml, decisions signed with ssh-keygen's
// SSHSIG, verified by the workflow through an activity before they count, and re-verified by `dbchange audit`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipelineStatus, sendDecision } from '../../cli/pipeline-client';
import { DECISION_NAMESPACE, statementText, type DecisionStatement } from '../../core/decision-statement';
import type { SignedDecision } from '../../core/decisions';
import { query } from '../helpers/postgres';
import { assertBuilt, runCli, type CliTarget } from '../helpers/processes';
import { migration } from '../helpers/project';
import { eventually, historyText, replayWorkflows } from '../helpers/stack';
import { useSuite } from '../helpers/suite';

const USERS = ['alice', 'bob', 'mallory', 'chatops'] as const;
type KeyOwner = (typeof USERS)[number];

describe('signed approvals', () => {
  const suite = useSuite();
  let keys: string;
  let files = 0;
  const key = (user: KeyOwner) => join(keys, user);
  const publicKey = (user: KeyOwner) => readFileSync(`${key(user)}.pub`, 'utf8').trim();
  const fingerprint = (user: KeyOwner) => /SHA256:[A-Za-z0-9+/]+/.exec(execFileSync('ssh-keygen', ['-l', '-f', `${key(user)}.pub`], { encoding: 'utf8' }))![0];

  beforeAll(() => {
    keys = mkdtempSync(join(tmpdir(), 'dbchange-keys-'));
    for (const user of USERS) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${user}@test`, '-f', key(user)]);
  });
  afterAll(() => rmSync(keys, { recursive: true, force: true }));

  /** Writes `text` to a file and signs it as a person elsewhere would: ssh-keygen -Y sign, leaving FILE.sig. */
  function sshSign(text: string, signer: KeyOwner): { statementFile: string; signatureFile: string; signature: string } {
    const statementFile = join(keys, `statement-${++files}.txt`);
    writeFileSync(statementFile, text);
    execFileSync('ssh-keygen', ['-Y', 'sign', '-f', key(signer), '-n', DECISION_NAMESPACE, statementFile], { stdio: 'ignore' });
    const signatureFile = `${statementFile}.sig`;
    return { statementFile, signatureFile, signature: readFileSync(signatureFile, 'utf8') };
  }

  /** The statement an approval of what `workflowId` waits for now would sign, with any field changed. */
  async function statementNow(workflowId: string, user: string, role: string, changes: Partial<DecisionStatement> = {}): Promise<string> {
    const { signing } = await pipelineStatus(suite.stack.client, workflowId);
    if (!signing) throw new Error(`${workflowId} shows nothing to sign`);
    const expires = new Date(Date.now() + 60 * 60 * 1000).toISOString();
    return statementText({ version: 1, workflowId, runId: signing.runId, decision: 'approve', gate: signing.gate, role, user, digest: signing.digest, expires, ...changes });
  }

  /** The base64 lines of a private key file: none of them may appear anywhere in a history. */
  function privateKeyLines(user: KeyOwner): string[] {
    return readFileSync(key(user), 'utf8')
      .split('\n')
      .filter((line) => line && !line.startsWith('-----'));
  }

  async function signedProject(prefix: string, signatures: 'optional' | 'required', options: { gatedStaging?: boolean; gateway?: boolean } = {}) {
    assertBuilt();
    const project = await suite.project(prefix, {
      environments: [
        { name: `${prefix}-staging`, ...(options.gatedStaging ? { approvalRoles: ['release-manager'] } : {}) },
        { name: `${prefix}-production`, approvalRoles: ['release-manager'] },
      ],
      migrations: { '20240901000001_create_notes.sql': migration('CREATE TABLE notes (id bigint PRIMARY KEY);') },
      approversYaml: [
        'approvers:',
        `  alice: { roles: [release-manager, eoc], keys: ["${publicKey('alice')}"] }`,
        `  bob: { roles: [manager, release-manager], keys: ["${publicKey('bob')}"] }`,
        `approvals: { signatures: ${signatures} }`,
        ...(options.gateway ? ['gateways:', `  chatops: { keys: ["${publicKey('chatops')}"], actsFor: [alice] }`] : []),
      ],
    });
    const handle = await suite.startPipeline(project);
    const target: CliTarget = { address: suite.stack.address, taskQueue: (await handle.describe()).taskQueue, configPath: project.configPath };
    return { project, handle, cli: (...args: string[]) => runCli(target, args, { timeoutMs: 60_000 }) };
  }

  it('refuses an unsigned approval when signatures are required; a CLI --sign-with approval counts, and audit re-verifies it', async () => {
    const { handle, cli } = await signedProject('sig', 'required');
    await suite.waitForStage(handle.workflowId, 'waiting-approval');
    expect(await sendDecision(suite.stack.client, handle.workflowId, 'approve', { user: 'alice', role: 'release-manager' })).toMatchObject({
      accepted: false,
      reason: expect.stringContaining('signatures are required'),
    });
    const approved = await cli('approve', handle.workflowId, '--as', 'alice', '--role', 'release-manager', '--sign-with', key('alice'));
    expect(approved.stdout + approved.stderr).toContain('accepted');
    const final = await handle.result();
    expect(final.stage).toBe('complete');
    const signature = final.decisions.find((decision) => decision.accepted)?.signature;
    expect(signature?.signer).toBe('alice');
    expect(signature?.fingerprint).toMatch(/^SHA256:/);
    const audit = await cli('audit', handle.workflowId);
    expect(audit.code, audit.stderr).toBe(0);
    expect(audit.stdout).toContain(`alice approve as release-manager at sig-production: signed by alice with ${signature?.fingerprint}`);
    // The same with an OpenSSH allowed_signers file instead of dbchange.yaml's keys.
    const allowedSigners = join(keys, 'allowed_signers');
    writeFileSync(allowedSigners, `alice namespaces="${DECISION_NAMESPACE}" ${publicKey('alice')}\n`);
    const fromFile = await cli('audit', handle.workflowId, '--allowed-signers', allowedSigners);
    expect(fromFile.code, fromFile.stdout + fromFile.stderr).toBe(0);
    expect(fromFile.stdout).toContain(`signed by alice with ${signature?.fingerprint}`);
  });

  it('refuses, records and outlives every bad signature; then a statement signed by ssh-keygen -Y sign and a gateway signing for alice both count', async () => {
    const { handle, cli } = await signedProject('sigbad', 'required', { gatedStaging: true, gateway: true });
    const other = await signedProject('sigother', 'required', { gatedStaging: true, gateway: true });
    const id = handle.workflowId;
    const waiting = await suite.waitForStage(id, 'waiting-approval');
    expect(waiting.environment).toBe('sigbad-staging');
    expect(waiting.signing).toMatchObject({ gate: 'sigbad-staging', digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) });
    await suite.waitForStage(other.handle.workflowId, 'waiting-approval');
    const approve = (user: string, signed: SignedDecision) => sendDecision(suite.stack.client, id, 'approve', { user, role: 'release-manager', signed });
    const good = sshSign(await statementNow(id, 'alice', 'release-manager'), 'alice');
    const statement = readFileSync(good.statementFile, 'utf8');
    const lines = good.signature.trimEnd().split('\n');
    const garbageBody = Buffer.from('x'.repeat(300)).toString('base64').match(/.{1,70}/g)!.join('\n');

    const refusals: [string, string, SignedDecision, RegExp | string][] = [
      ['a key that is no approver’s', 'alice', { statement, signature: sshSign(statement, 'mallory').signature }, `signed with key ${fingerprint('mallory')}, which is not one of the keys of alice`],
      ['another approver’s key', 'alice', { statement, signature: sshSign(statement, 'bob').signature }, "signed with bob's key, not alice's"],
      ['a truncated signature (no END line)', 'alice', { statement, signature: good.signature.slice(0, Math.floor(good.signature.length / 2)) }, 'the signature is truncated: it has no -----END SSH SIGNATURE----- line'],
      ['a truncated signature (body cut short)', 'alice', { statement, signature: [lines[0], lines[1], lines.at(-1)].join('\n') }, 'the signature is truncated or damaged (ssh-keygen cannot read it)'],
      ['a garbage signature', 'alice', { statement, signature: 'this is not a signature, trust me' }, 'not an SSH signature'],
      ['garbage in an SSH signature armor', 'alice', { statement, signature: `-----BEGIN SSH SIGNATURE-----\n${garbageBody}\n-----END SSH SIGNATURE-----\n` }, 'the signature is truncated or damaged (ssh-keygen cannot read it)'],
    ];
    // Made for the other pipeline, signed properly by alice, sent here.
    const elsewhere = sshSign(await statementNow(other.handle.workflowId, 'alice', 'release-manager'), 'alice');
    refusals.push(['a signature replayed from another workflow', 'alice', { statement: readFileSync(elsewhere.statementFile, 'utf8'), signature: elsewhere.signature }, `signed for workflow ${other.handle.workflowId}, not ${id} (a signature cannot be replayed on another workflow)`]);
    const otherDigest = sshSign(await statementNow(id, 'alice', 'release-manager', { digest: `sha256:${'0'.repeat(64)}` }), 'alice');
    refusals.push(['a signature over another digest', 'alice', { statement: readFileSync(otherDigest.statementFile, 'utf8'), signature: otherDigest.signature }, /^signed for digest sha256:000000000000…, but what runs after this gate is sha256:[0-9a-f]{12}… \(the change or the pending files changed since it was signed\)$/]);
    const expiredAt = new Date(Date.now() - 60_000).toISOString();
    const expired = sshSign(await statementNow(id, 'alice', 'release-manager', { expires: expiredAt }), 'alice');
    refusals.push(['an expired statement', 'alice', { statement: readFileSync(expired.statementFile, 'utf8'), signature: expired.signature }, `the statement expired at ${expiredAt} (sign a new one)`]);
    const forBob = sshSign(await statementNow(id, 'bob', 'release-manager'), 'chatops');
    refusals.push(['a gateway asserting a user outside actsFor', 'bob', { statement: readFileSync(forBob.statementFile, 'utf8'), signature: forBob.signature }, 'gateway chatops may not act for bob (actsFor: alice)']);

    const answers: { what: string; reason: string }[] = [];
    for (const [what, user, signed, reason] of refusals) {
      const answer = await approve(user, signed);
      expect(answer, what).toMatchObject({ accepted: false, reason: typeof reason === 'string' ? expect.stringContaining(reason) : expect.stringMatching(reason) });
      answers.push({ what, reason: answer.reason });
    }
    // From the CLI: alice's statement signed with bob's key is refused with exit 3 and the reason.
    const byCli = await cli('approve', id, '--as', 'alice', '--role', 'release-manager', '--sign-with', key('bob'));
    expect({ code: byCli.code, output: byCli.stdout + byCli.stderr }).toEqual({ code: 3, output: expect.stringContaining("signed with bob's key, not alice's") });
    answers.push({ what: 'the CLI signing with another approver’s key', reason: "signed with bob's key, not alice's" });
    console.log(`signed approval refusals:\n${answers.map((answer) => `  ${answer.what}: ${answer.reason}`).join('\n')}`);

    // 1 MB of signature: an update is refused by its validator before it enters history; a raw signal is recorded as refused.
    const huge = `-----BEGIN SSH SIGNATURE-----\n${'QUFB'.repeat(256 * 1024).match(/.{1,70}/g)!.join('\n')}\n-----END SSH SIGNATURE-----\n`;
    expect(huge.length).toBeGreaterThan(1024 * 1024);
    const hugeSigned = { statement, signature: huge };
    const before = (await pipelineStatus(suite.stack.client, id)).decisions.length;
    await expect(approve('alice', hugeSigned)).rejects.toMatchObject({ exitCode: 3, message: expect.stringMatching(/approve refused by .*KB as JSON; a decision may be at most 8 KB/) });
    expect((await pipelineStatus(suite.stack.client, id)).decisions).toHaveLength(before);
    await suite.stack.client.workflow.getHandle(id).signal('approve', { user: 'alice', role: 'release-manager', signed: hugeSigned });
    const afterSignal = await eventually(async () => {
      const snapshot = await pipelineStatus(suite.stack.client, id);
      return snapshot.decisions.length > before && snapshot;
    }, 'the 1 MB signal to be recorded');
    expect(afterSignal.decisions.at(-1)).toMatchObject({ kind: 'approve', user: 'alice', accepted: false, reason: expect.stringContaining('"signed.signature" is longer than 4096 characters') });

    // Every refusal is recorded with its reason, no signature is kept, and the pipeline still waits at the same gate.
    expect(afterSignal.decisions.map((decision) => [decision.accepted, decision.reason])).toEqual([...answers.map((answer) => [false, answer.reason]), [false, afterSignal.decisions.at(-1)!.reason]]);
    expect(afterSignal.decisions.every((decision) => decision.signature === undefined)).toBe(true);
    expect(afterSignal).toMatchObject({ stage: 'waiting-approval', environment: 'sigbad-staging', signing: waiting.signing });
    expect(afterSignal.results.find((result) => result.environment === 'sigbad-staging')?.migrations).toEqual([]);

    // Signed elsewhere: --print-statement, ssh-keygen -Y sign, --signature FILE.sig.
    const printed = await cli('approve', id, '--as', 'alice', '--role', 'release-manager', '--print-statement');
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout).toMatch(new RegExp(`^dbchange decision statement v1\nworkflowId: ${id.replace(/[+]/g, '\\+')}\n`));
    const signedElsewhere = sshSign(printed.stdout, 'alice');
    const approved = await cli('approve', id, '--as', 'alice', '--role', 'release-manager', '--signature', signedElsewhere.signatureFile);
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toContain('accepted');

    // A gateway that authenticated alice itself signs her statement with its own key.
    await eventually(async () => {
      const snapshot = await pipelineStatus(suite.stack.client, id);
      return snapshot.stage === 'waiting-approval' && snapshot.environment === 'sigbad-production';
    }, 'the production gate');
    const gateway = await cli('approve', id, '--as', 'alice', '--role', 'release-manager', '--sign-with', key('chatops'));
    expect(gateway.code, gateway.stderr).toBe(0);
    const final = await handle.result();
    expect(final.stage).toBe('complete');
    expect(final.decisions.filter((decision) => decision.accepted).map((decision) => [decision.environment, decision.user, decision.signature?.signer, decision.signature?.fingerprint])).toEqual([
      ['sigbad-staging', 'alice', 'alice', fingerprint('alice')],
      ['sigbad-production', 'alice', 'gateway chatops', fingerprint('chatops')],
    ]);
    const audit = await cli('audit', id);
    expect(audit.code, audit.stdout + audit.stderr).toBe(0);
    expect(audit.stdout).toContain(`alice approve as release-manager at sigbad-production: signed by gateway chatops with ${fingerprint('chatops')}`);

    // The other pipeline ends with a signed rejection; a failed pipeline's audit re-verifies it too.
    const rejected = await other.cli('reject', other.handle.workflowId, '--as', 'alice', '--reason', 'only here to be replayed on', '--sign-with', key('alice'));
    expect(rejected.code, rejected.stderr).toBe(0);
    await expect(other.handle.result()).rejects.toThrow();
    const otherAudit = await other.cli('audit', other.handle.workflowId);
    expect(otherAudit.code, otherAudit.stdout + otherAudit.stderr).toBe(0);
    expect(otherAudit.stdout).toContain(`alice reject at sigother-staging: signed by alice with ${fingerprint('alice')}`);

    // Signatures are in history; private keys never are.
    for (const workflowId of [id, other.handle.workflowId]) {
      const history = await historyText(suite.stack, workflowId);
      expect(history).toContain('-----BEGIN SSH SIGNATURE-----');
      for (const user of USERS) {
        expect(history).not.toContain('PRIVATE KEY');
        for (const line of privateKeyLines(user)) expect(history.includes(line), `a line of ${user}'s private key is in ${workflowId}'s history`).toBe(false);
      }
    }
  });

  it('a file added after the approval was signed does not run under it: the pipeline blocks before applying, naming the change', async () => {
    const { project, handle, cli } = await signedProject('sigdig', 'optional');
    const id = handle.workflowId;
    const waiting = await suite.waitForStage(id, 'waiting-approval');
    expect(waiting.environment).toBe('sigdig-production');
    const printed = await cli('approve', id, '--as', 'alice', '--role', 'release-manager', '--print-statement');
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout).toContain(`digest: ${waiting.signing?.digest}`);
    // Someone adds a migration while the gate waits: the signature below never saw it.
    project.writeMigration('20240901000002_drop_notes.sql', migration('DROP TABLE notes;'));
    const signed = sshSign(printed.stdout, 'alice');
    const approved = await cli('approve', id, '--as', 'alice', '--role', 'release-manager', '--signature', signed.signatureFile);
    expect(approved.code, approved.stderr).toBe(0);
    const blocked = await suite.waitForStage(id, 'blocked');
    expect(blocked.environment).toBe('sigdig-production');
    expect(blocked.lastError).toMatch(/^the pending files of sigdig-production changed since they were approved \(approved sha256:[0-9a-f]{12}…, now sha256:[0-9a-f]{12}…\)/);
    expect(await query(project.urls['sigdig-production'], `SELECT to_regclass('notes') IS NOT NULL AS kept, to_regclass('schema_migrations') IS NULL AS untouched`)).toEqual([{ kept: false, untouched: true }]);
    expect((await cli('resolve', id, '--as', 'alice', '--action', 'abort')).code).toBe(0);
    await expect(handle.result()).rejects.toThrow();
  });

  it('replays every workflow of this file without nondeterminism', async () => {
    expect(await replayWorkflows(suite.stack, suite.workflowIds)).toBe(suite.workflowIds.length);
  });
});
