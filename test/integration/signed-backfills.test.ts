// Signed decisions on a backfill under approvals.signatures: required: pause, resume and cancel are decisions like
// approvals, so an unsigned one, or one signed with another person's key, is refused and recorded.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBackfillStatus, startBackfill } from '../../cli/backfill-client';
import { checksumOfBackfill } from '../../core/backfill-file';
import type { BackfillStatus } from '../../core/backfill-status';
import { query } from '../helpers/postgres';
import { assertBuilt, runCli, type CliTarget } from '../helpers/processes';
import { eventually, historyText, replayWorkflows } from '../helpers/stack';
import { useSuite } from '../helpers/suite';

const ENVIRONMENT = 'sbf-staging';
const BACKFILL = ['table: sbf_items', 'key: id', 'batch: UPDATE sbf_items SET touched = touched + 1 WHERE id >= :start AND id < :end', 'maxBatchSize: 50', 'pauseWhen:', '  query: SELECT paused FROM sbf_flags', ''].join('\n');

describe('signed backfill decisions', () => {
  const suite = useSuite();
  let keys: string;
  const key = (user: 'alice' | 'mallory') => join(keys, user);
  const fingerprint = (user: 'alice' | 'mallory') => /SHA256:[A-Za-z0-9+/]+/.exec(execFileSync('ssh-keygen', ['-l', '-f', `${key(user)}.pub`], { encoding: 'utf8' }))![0];

  beforeAll(() => {
    keys = mkdtempSync(join(tmpdir(), 'dbchange-bf-keys-'));
    for (const user of ['alice', 'mallory'] as const) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${user}@test`, '-f', key(user)]);
  });
  afterAll(() => rmSync(keys, { recursive: true, force: true }));

  it('refuses an unsigned pause and one signed with another key, accepts signed ones, and audit verifies them', async () => {
    assertBuilt();
    const project = await suite.project('sbf', {
      environments: [{ name: ENVIRONMENT }],
      migrations: {},
      backfills: { '20241104120000_signed_items.yaml': BACKFILL },
      approversYaml: [
        'approvers:',
        `  alice: { roles: [release-manager], keys: ["${readFileSync(`${key('alice')}.pub`, 'utf8').trim()}"] }`,
        `  mallory: { roles: [release-manager], keys: ["${readFileSync(`${key('mallory')}.pub`, 'utf8').trim()}"] }`,
        'approvals: { signatures: required }',
      ],
    });
    const url = project.urls[ENVIRONMENT];
    await query(url, 'CREATE TABLE sbf_items (id bigint PRIMARY KEY, touched int NOT NULL DEFAULT 0)');
    await query(url, 'INSERT INTO sbf_items (id) SELECT generate_series(1, 300)');
    await query(url, 'CREATE TABLE sbf_flags AS SELECT true AS paused');
    const taskQueue = suite.stack.newTaskQueue();
    await suite.stack.startWorker(project.config, taskQueue);
    const target: CliTarget = { address: suite.stack.address, taskQueue, configPath: project.configPath };
    const cli = (...args: string[]) => runCli(target, args, { timeoutMs: 60_000 });

    const workflowId = await startBackfill(suite.stack.client, project.config, { name: 'signed_items', environment: ENVIRONMENT, requestedBy: 'dave', taskQueue });
    suite.workflowIds.push(workflowId);
    const paused = await eventually(async () => {
      const status = await readBackfillStatus(suite.stack.client, ENVIRONMENT, 'signed_items');
      return status.paused?.by === 'condition' && status;
    }, 'a pause by its condition');
    const checksum = checksumOfBackfill(BACKFILL);
    expect(paused.signing).toMatchObject({ gate: ENVIRONMENT, digest: `sha256:${checksum}` });

    const pause = ['backfill', 'pause', 'signed_items', '--env', ENVIRONMENT, '--as', 'alice'];
    const unsigned = await cli(...pause);
    expect(unsigned).toMatchObject({ code: 3, stdout: expect.stringContaining('refused: signatures are required') });
    const forged = await cli(...pause, '--sign-with', key('mallory'));
    expect(forged.code).toBe(3);
    expect(forged.stdout).toMatch(/^refused: .*alice/);
    expect((await readBackfillStatus(suite.stack.client, ENVIRONMENT, 'signed_items')).paused).toMatchObject({ by: 'condition' });

    expect((await cli(...pause, '--sign-with', key('alice'), '--comment', 'replica work')).stdout).toBe('accepted: paused after the running batch\n');
    expect((await cli('backfill', 'cancel', 'signed_items', '--env', ENVIRONMENT, '--as', 'alice', '--sign-with', key('alice'))).stdout).toBe('accepted: cancelled after the running batch\n');
    const final = (await suite.stack.client.workflow.getHandle(workflowId).result()) as BackfillStatus;
    expect(final.state).toBe('cancelled');
    expect(final.decisions.map((decision) => [decision.kind, decision.user, decision.accepted, decision.signature?.fingerprint])).toEqual([
      ['pause', 'alice', false, undefined],
      ['pause', 'alice', false, undefined],
      ['pause', 'alice', true, fingerprint('alice')],
      ['cancel', 'alice', true, fingerprint('alice')],
    ]);
    expect(await query(url, "SELECT state, decided_by FROM dbchange_backfills WHERE name = 'signed_items'")).toEqual([{ state: 'cancelled', decided_by: 'alice' }]);

    const audit = await cli('audit', workflowId);
    expect(audit.code, audit.stderr).toBe(0);
    expect(audit.stdout.trimEnd().split('\n')).toEqual([
      `${workflowId}: 2 accepted decisions, all verified`,
      expect.stringMatching(new RegExp(`^  \\S+ alice pause at ${ENVIRONMENT}: signed by alice with ${fingerprint('alice').replace(/[+/]/g, '\\$&')}, digest sha256:${checksum}$`)),
      expect.stringMatching(new RegExp(`^  \\S+ alice cancel at ${ENVIRONMENT}: signed by alice with ${fingerprint('alice').replace(/[+/]/g, '\\$&')}, digest sha256:${checksum}$`)),
    ]);
    const history = await historyText(suite.stack, workflowId);
    for (const user of ['alice', 'mallory'] as const) {
      for (const line of readFileSync(key(user), 'utf8').split('\n').filter((text) => text && !text.startsWith('-----'))) expect(history.includes(line), `${user}'s private key in history`).toBe(false);
    }
  });

  it('replays every workflow of this file without nondeterminism', async () => {
    expect(await replayWorkflows(suite.stack, suite.workflowIds)).toBe(suite.workflowIds.length);
  });
});
