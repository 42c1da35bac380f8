// Signed approvals of a change request on the real stack: a C1 change approved by eoc and manager, both signed over
// the CR's checksum, then `dbchange audit` on the closed workflow: its text, its JSON, an allowed_signers file, and
// a dbchange.yaml whose key for alice was swapped.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changeRequestStatus } from '../../cli/change-client';
import { sendDecision } from '../../cli/pipeline-client';
import type { ChangeRequestStatus } from '../../core/change-status';
import { DECISION_NAMESPACE, statementText } from '../../core/decision-statement';
import type { Approval } from '../../core/decisions';
import { writeChangeRequest } from '../helpers/change-requests';
import { query } from '../helpers/postgres';
import { assertBuilt, parseJsonOutput, runCli, type CliTarget } from '../helpers/processes';
import type { TestProject } from '../helpers/project';
import { eventually, historyText, replayWorkflows } from '../helpers/stack';
import { useSuite } from '../helpers/suite';

/** alice and mallory sign with ed25519 keys; bob with ECDSA, whose public key's base64 ends in `=`. */
const KEY_TYPES = { alice: 'ed25519', bob: 'ecdsa', mallory: 'ed25519' } as const;
type KeyOwner = keyof typeof KEY_TYPES;
const CR_ID = 'signed-c1';
const WORKFLOW_ID = `cr-${CR_ID}`;

interface AuditJson {
  version: number;
  kind: string;
  workflowId: string;
  verified: boolean;
  decisions: { at: string; kind: string; user: string; role?: string; gate?: string; digest?: string; signer?: string; fingerprint?: string; verified: boolean; problem?: string }[];
}

describe('signed change requests', () => {
  const suite = useSuite();
  let keys: string;
  const key = (user: KeyOwner) => join(keys, user);
  const publicKey = (user: KeyOwner) => readFileSync(`${key(user)}.pub`, 'utf8').trim();
  const fingerprint = (user: KeyOwner) => /SHA256:[A-Za-z0-9+/]+/.exec(execFileSync('ssh-keygen', ['-l', '-f', `${key(user)}.pub`], { encoding: 'utf8' }))![0];
  /** Set by the first test, audited again by the next ones. */
  let closed: { project: TestProject; target: CliTarget; checksum: string } | undefined;

  beforeAll(() => {
    keys = mkdtempSync(join(tmpdir(), 'dbchange-keys-'));
    for (const [user, type] of Object.entries(KEY_TYPES)) execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', `${user}@test`, '-f', key(user as KeyOwner)]);
  });
  afterAll(() => rmSync(keys, { recursive: true, force: true }));

  function sshSign(text: string, signer: KeyOwner, name: string): { statementFile: string; signatureFile: string } {
    const statementFile = join(keys, `${name}.txt`);
    writeFileSync(statementFile, text);
    execFileSync('ssh-keygen', ['-Y', 'sign', '-f', key(signer), '-n', DECISION_NAMESPACE, statementFile], { stdio: 'ignore' });
    return { statementFile, signatureFile: `${statementFile}.sig` };
  }

  function approversYaml(aliceKey: string): string[] {
    return [
      'approvers:',
      `  alice: { roles: [eoc, release-manager], keys: ["${aliceKey}"] }`,
      `  bob: { roles: [manager], keys: ["${publicKey('bob')}"] }`,
      '  msmiley: [eoc]',
      'approvals: { signatures: required }',
    ];
  }

  /** A project whose approvals must be signed (alice's key as dbchange.yaml lists it), with a worker of its own. */
  async function signedProject(prefix: string, environments: string[], rollbackWindow: string) {
    const project = await suite.project(prefix, {
      environments: environments.map((name) => ({ name })),
      migrations: {},
      approversYaml: approversYaml(publicKey('alice')),
      changeRequests: { rollbackWindow },
    });
    const taskQueue = suite.stack.newTaskQueue();
    await suite.stack.startWorker(project.config, taskQueue);
    const target: CliTarget = { address: suite.stack.address, taskQueue, configPath: project.configPath };
    return { project, target };
  }

  async function cli(target: CliTarget, args: string[], expectedCode = 0) {
    const result = await runCli(target, args, { timeoutMs: 60_000 });
    if (result.code !== expectedCode) throw new Error(`dbchange ${args.join(' ')} exited ${result.code}, expected ${expectedCode}: ${result.stderr}${result.stdout}`);
    return result;
  }

  it('a C1 change approved by eoc and manager, both signed over its checksum, runs; audit of the closed change lists both with their keys', async () => {
    assertBuilt();
    const { project, target } = await signedProject('scr', ['scr-staging', 'scr-production'], '2s');
    const file = writeChangeRequest(
      project,
      'c1.yaml',
      [
        `id: ${CR_ID}`,
        'title: a signed C1 change',
        'criticality: C1',
        'requestedBy: msmiley',
        'environments: [scr-staging, scr-production]',
        'steps:',
        '  - id: create-markers',
        '    sql: |',
        '      CREATE TABLE change_markers (id int PRIMARY KEY, note text);',
        "      INSERT INTO change_markers (id, note) VALUES (1, 'signed');",
      ].join('\n'),
    );
    const { checksum } = parseJsonOutput<{ checksum: string }>(await cli(target, ['cr', 'validate', file, '--json']));
    await cli(target, ['cr', 'execute', file]);
    suite.workflowIds.push(WORKFLOW_ID);
    const digest = `sha256:${checksum}`;
    const waiting = await eventually(async () => {
      const snapshot = await changeRequestStatus(suite.stack.client, WORKFLOW_ID);
      return snapshot.stage === 'waiting-approval' && snapshot;
    }, 'the change to wait for approval');
    expect(waiting.signing).toMatchObject({ gate: 'the change', digest });

    // Refused and recorded, the change still waiting: unsigned, and signed over another checksum.
    const approve = (payload: Approval) => sendDecision(suite.stack.client, WORKFLOW_ID, 'approve', payload);
    expect(await approve({ user: 'alice', role: 'eoc', checksum })).toMatchObject({ accepted: false, reason: expect.stringContaining('signatures are required') });
    const expires = new Date(Date.now() + 30 * 60 * 1000).toISOString();
    const otherChecksum = sshSign(
      statementText({ version: 1, workflowId: WORKFLOW_ID, runId: waiting.signing!.runId, decision: 'approve', gate: 'the change', role: 'eoc', user: 'alice', digest: `sha256:${'f'.repeat(64)}`, expires }),
      'alice',
      'other-checksum',
    );
    const overOther = await approve({
      user: 'alice',
      role: 'eoc',
      checksum,
      signed: { statement: readFileSync(otherChecksum.statementFile, 'utf8'), signature: readFileSync(otherChecksum.signatureFile, 'utf8') },
    });
    expect(overOther).toMatchObject({ accepted: false, reason: `signed for digest sha256:ffffffffffff…, but what runs after this gate is sha256:${checksum.slice(0, 12)}… (the change or the pending files changed since it was signed)` });
    const stillWaiting = await changeRequestStatus(suite.stack.client, WORKFLOW_ID);
    expect(stillWaiting).toMatchObject({ stage: 'waiting-approval', signing: waiting.signing, approvals: [{ role: 'eoc' }, { role: 'manager' }] });
    expect(stillWaiting.approvals.every((approval) => approval.by === undefined)).toBe(true);
    expect(stillWaiting.decisions.map((decision) => decision.accepted)).toEqual([false, false]);

    // alice signs here; bob prints the statement, signs it with ssh-keygen and sends the signature.
    await cli(target, ['approve', WORKFLOW_ID, '--as', 'alice', '--role', 'eoc', '--checksum', checksum.slice(0, 12), '--sign-with', key('alice')]);
    const printed = await cli(target, ['approve', WORKFLOW_ID, '--as', 'bob', '--role', 'manager', '--print-statement']);
    expect(printed.stdout).toContain(`digest: ${digest}\n`);
    const bobSigned = sshSign(printed.stdout, 'bob', 'bob-manager');
    const accepted = await cli(target, ['approve', WORKFLOW_ID, '--as', 'bob', '--role', 'manager', '--checksum', checksum, '--signature', bobSigned.signatureFile]);
    expect(accepted.stdout).toContain('accepted');

    const final = (await suite.stack.client.workflow.getHandle(WORKFLOW_ID).result()) as ChangeRequestStatus;
    expect(final.stage).toBe('complete');
    expect(final.approvals).toEqual([
      { role: 'eoc', by: 'alice' },
      { role: 'manager', by: 'bob' },
    ]);
    for (const url of Object.values(project.urls)) expect(await query(url, 'SELECT note FROM change_markers')).toEqual([{ note: 'signed' }]);
    expect(final.decisions.filter((decision) => decision.accepted).map((decision) => decision.signature?.fingerprint)).toEqual([fingerprint('alice'), fingerprint('bob')]);
    const history = await historyText(suite.stack, WORKFLOW_ID);
    for (const user of Object.keys(KEY_TYPES) as KeyOwner[]) {
      for (const line of readFileSync(key(user), 'utf8').split('\n').filter((text) => text && !text.startsWith('-----'))) expect(history.includes(line), `${user}'s private key in history`).toBe(false);
    }

    const audit = await cli(target, ['audit', WORKFLOW_ID]);
    const lines = audit.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`${WORKFLOW_ID}: 2 accepted decisions, all verified`);
    expect(lines.slice(1)).toEqual([
      expect.stringMatching(new RegExp(`^  \\S+ alice approve as eoc at the change: signed by alice with ${escape(fingerprint('alice'))}, digest ${digest}$`)),
      expect.stringMatching(new RegExp(`^  \\S+ bob approve as manager at the change: signed by bob with ${escape(fingerprint('bob'))}, digest ${digest}$`)),
    ]);

    const json = parseJsonOutput<AuditJson>(await cli(target, ['audit', WORKFLOW_ID, '--json']));
    expect(json).toEqual({
      version: expect.any(Number),
      kind: 'audit',
      workflowId: WORKFLOW_ID,
      verified: true,
      decisions: [
        { at: expect.any(String), kind: 'approve', user: 'alice', role: 'eoc', gate: 'the change', digest, signer: 'alice', fingerprint: fingerprint('alice'), verified: true },
        { at: expect.any(String), kind: 'approve', user: 'bob', role: 'manager', gate: 'the change', digest, signer: 'bob', fingerprint: fingerprint('bob'), verified: true },
      ],
    });
    expect(json.decisions.every((decision) => Number.isFinite(Date.parse(decision.at)))).toBe(true);
    closed = { project, target, checksum };
  });

  it('audit exits 1 and names alice’s decision as NOT VERIFIED once dbchange.yaml lists another key for her', async () => {
    if (!closed) throw new Error('needs the closed change of the first test');
    const { project, target } = closed;
    const original = readFileSync(project.configPath, 'utf8');
    try {
      writeFileSync(project.configPath, original.replace(publicKey('alice'), publicKey('mallory')));
      expect(readFileSync(project.configPath, 'utf8')).toContain(publicKey('mallory'));
      const audit = await cli(target, ['audit', WORKFLOW_ID], 1);
      const lines = audit.stdout.trimEnd().split('\n');
      expect(lines[0]).toBe(`${WORKFLOW_ID}: 2 accepted decisions, 1 not verified`);
      expect(lines[1]).toMatch(/^ {2}\S+ alice approve as eoc at the change: NOT VERIFIED: /);
      expect(lines[1]).toContain(fingerprint('alice'));
      expect(lines[2]).toContain(`bob approve as manager at the change: signed by bob with ${fingerprint('bob')}`);
      const json = parseJsonOutput<AuditJson>(await cli(target, ['audit', WORKFLOW_ID, '--json'], 1));
      expect(json.verified).toBe(false);
      expect(json.decisions.map((decision) => [decision.user, decision.verified])).toEqual([
        ['alice', false],
        ['bob', true],
      ]);
      expect(json.decisions[0].problem).toEqual(expect.any(String));
    } finally {
      writeFileSync(project.configPath, original);
    }
  });

  it('audit --allowed-signers re-verifies against an OpenSSH allowed_signers file (an ed25519 and an ECDSA key), and exits 1 on a file with the wrong key', async () => {
    if (!closed) throw new Error('needs the closed change of the first test');
    const { project, target } = closed;
    const allowedSigners = (alice: KeyOwner) =>
      [`# who signs dbchange decisions`, `alice namespaces="${DECISION_NAMESPACE}" ${publicKey(alice)}`, `bob namespaces="${DECISION_NAMESPACE}" ${publicKey('bob')}`, ''].join('\n');
    const good = join(project.dir, 'allowed_signers');
    writeFileSync(good, allowedSigners('alice'));
    // The file is the one ssh-keygen itself accepts for bob's signature.
    const bobStatement = join(keys, 'bob-manager.txt');
    execFileSync('ssh-keygen', ['-Y', 'verify', '-f', good, '-I', 'bob', '-n', DECISION_NAMESPACE, '-s', `${bobStatement}.sig`], { input: readFileSync(bobStatement), stdio: ['pipe', 'ignore', 'ignore'] });

    const audit = await runCli(target, ['audit', WORKFLOW_ID, '--allowed-signers', good], { timeoutMs: 60_000 });
    expect({ code: audit.code, stdout: audit.stdout }).toEqual({ code: 0, stdout: expect.stringContaining(`${WORKFLOW_ID}: 2 accepted decisions, all verified`) });

    const wrong = join(project.dir, 'allowed_signers.wrong');
    writeFileSync(wrong, allowedSigners('mallory'));
    const refused = await cli(target, ['audit', WORKFLOW_ID, '--allowed-signers', wrong], 1);
    expect(refused.stdout).toMatch(/alice approve as eoc at the change: NOT VERIFIED/);
  });

  it('a rollback needs a signature too: refused unsigned and signed by another key, accepted signed, and audited', async () => {
    const { project, target } = await signedProject('srb', ['srb-staging'], '10m');
    const file = writeChangeRequest(
      project,
      'c4.yaml',
      [
        'id: signed-rollback',
        'title: a change rolled back with a signature',
        'criticality: C4',
        'requestedBy: msmiley',
        'environments: [srb-staging]',
        'steps:',
        '  - id: add-marker',
        '    sql: CREATE TABLE rollback_markers (id int)',
        'rollback:',
        '  - id: drop-marker',
        '    sql: DROP TABLE rollback_markers',
      ].join('\n'),
    );
    await cli(target, ['cr', 'execute', file]);
    const workflowId = 'cr-signed-rollback';
    suite.workflowIds.push(workflowId);
    await eventually(async () => (await changeRequestStatus(suite.stack.client, workflowId)).stage === 'complete', 'the change to complete');
    const url = project.urls['srb-staging'];
    expect(await query(url, "SELECT to_regclass('rollback_markers') IS NOT NULL AS there")).toEqual([{ there: true }]);

    // Unsigned, and signed by mallory's key in alice's name: both refused, and the table stays.
    const unsigned = await cli(target, ['cr', 'rollback', workflowId, '--as', 'alice', '--reason', 'not needed after all'], 3);
    expect(unsigned.stdout).toContain('refused: signatures are required');
    const forged = await cli(target, ['cr', 'rollback', workflowId, '--as', 'alice', '--reason', 'not needed after all', '--sign-with', key('mallory')], 3);
    expect(forged.stdout).toMatch(/^refused: .*alice/);
    expect(await query(url, "SELECT to_regclass('rollback_markers') IS NOT NULL AS there")).toEqual([{ there: true }]);

    const signed = await cli(target, ['cr', 'rollback', workflowId, '--as', 'alice', '--reason', 'not needed after all', '--sign-with', key('alice')]);
    expect(signed.stdout).toBe('accepted: rollback requested\n');
    const final = (await suite.stack.client.workflow.getHandle(workflowId).result()) as ChangeRequestStatus;
    expect(final.stage).toBe('rolled-back');
    expect(await query(url, "SELECT to_regclass('rollback_markers') IS NOT NULL AS there")).toEqual([{ there: false }]);
    expect(final.decisions.map((decision) => [decision.kind, decision.user, decision.accepted])).toEqual([
      ['rollback', 'alice', false],
      ['rollback', 'alice', false],
      ['rollback', 'alice', true],
    ]);

    const audit = await cli(target, ['audit', workflowId]);
    expect(audit.stdout.trimEnd().split('\n')).toEqual([
      `${workflowId}: 1 accepted decision, all verified`,
      expect.stringMatching(new RegExp(`^  \\S+ alice rollback action rollback at the change: signed by alice with ${escape(fingerprint('alice'))}, digest sha256:[0-9a-f]{64}$`)),
    ]);
  });

  it('replays every workflow of this file without nondeterminism', async () => {
    expect(await replayWorkflows(suite.stack, suite.workflowIds)).toBe(suite.workflowIds.length);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
