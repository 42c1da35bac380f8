import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { pipelineStatus, startPipeline } from '../../cli/pipeline-client';
import type { PipelineStatus } from '../../core/pipeline';
import { parseChatCommand } from '../../examples/chat-ops/chat-command';
import { handleChatCommand } from '../../examples/chat-ops/handler';
import { queryOverHttp, signalOverHttp } from '../../examples/chat-ops/http-api';
import { startOwnDevServer, type OwnDevServer } from '../helpers/dev-servers';
import { assertBuilt } from '../helpers/processes';
import { createProject, migration, type TestProject } from '../helpers/project';
import { createStack, eventually, replayWorkflows, type Stack } from '../helpers/stack';

const run = promisify(execFile);
const HANDLER_SCRIPT = fileURLToPath(new URL('../../dist/examples/chat-ops/handler.js', import.meta.url));
const MIGRATIONS = { '20240901000001_create_refunds.sql': migration('CREATE TABLE chat_refunds (id bigint PRIMARY KEY);') };

describe('approvals from chat tooling, without dbchange installed', () => {
  let server: OwnDevServer;
  let stack: Stack;
  const projects: TestProject[] = [];
  const workflowIds: string[] = [];

  beforeAll(async () => {
    assertBuilt();
    server = await startOwnDevServer({ http: true });
    stack = await createStack('default', server.address);
  });
  afterAll(async () => {
    await stack?.close();
    await server?.stop();
    await Promise.all(projects.map((project) => project.cleanup()));
  });

  /** A pipeline waiting for a release-manager before `<prefix>-production`. */
  async function pipelineAtGate(prefix: string, requestedBy: string, approversYaml?: string[]): Promise<string> {
    const project = await createProject(prefix, {
      environments: [{ name: `${prefix}-staging` }, { name: `${prefix}-production`, approvalRoles: ['release-manager'] }],
      migrations: MIGRATIONS,
      approversYaml,
    });
    projects.push(project);
    const taskQueue = stack.newTaskQueue();
    await stack.startWorker(project.config, taskQueue);
    const handle = await startPipeline(stack.client, project.config, { requestedBy, taskQueue });
    workflowIds.push(handle.workflowId);
    await eventually(async () => (await pipelineStatus(stack.client, handle.workflowId)).stage === 'waiting-approval', `${handle.workflowId} at its gate`);
    return handle.workflowId;
  }

  const decisionsOf = (snapshot: PipelineStatus) => snapshot.decisions.map((decision) => [decision.user, decision.accepted, decision.reason]);

  it('POST .../signal/approve over the HTTP API: a malformed or unauthorised approval is refused and shows in the status; a valid one lets the pipeline finish', async () => {
    const workflowId = await pipelineAtGate('http', 'dave');
    const httpBase = `http://127.0.0.1:${server.httpPort}`;
    const status = () => queryOverHttp<PipelineStatus>(httpBase, 'default', workflowId, 'status');

    await signalOverHttp(httpBase, 'default', workflowId, 'approve', { user: 'alice' });
    await signalOverHttp(httpBase, 'default', workflowId, 'approve', { user: 'bob', role: 'release-manager' });
    const refused = await eventually(async () => {
      const snapshot = await status();
      return snapshot.decisions.length === 2 && snapshot;
    }, 'two refusals in the status read over HTTP');
    expect(refused.stage).toBe('waiting-approval');
    expect(decisionsOf(refused)).toEqual([
      ['alice', false, '"role" is required'],
      ['bob', false, 'bob does not hold the role release-manager (holds: manager)'],
    ]);

    await signalOverHttp(httpBase, 'default', workflowId, 'approve', { user: 'alice', role: 'release-manager', comment: 'from the chat bot' });
    const result: PipelineStatus = await stack.client.workflow.getHandle(workflowId).result();
    expect(result.stage).toBe('complete');
    expect(result.decisions.filter((decision) => decision.accepted)).toMatchObject([{ user: 'alice', role: 'release-manager', comment: 'from the chat bot', environment: 'http-production' }]);
  });

  it('a 404 from the HTTP API names the missing workflow', async () => {
    const failure = await signalOverHttp(`http://127.0.0.1:${server.httpPort}`, 'default', 'pdm-nowhere', 'approve', { user: 'alice', role: 'release-manager' }).catch((error: unknown) => error);
    expect(String(failure)).toMatch(/answered 404: .*workflow not found for ID: pdm-nowhere/);
  });

  it('`temporal workflow signal` with JSON input is validated the same way, and the chat handler answers at once through `temporal workflow update execute`', async () => {
    const workflowId = await pipelineAtGate('chat', 'alice');
    const temporal = { cli: inject('temporalCli'), address: server.address };

    await run(temporal.cli, ['workflow', 'signal', '--address', server.address, '--workflow-id', workflowId, '--name', 'approve', '--input', JSON.stringify({ user: 'alice', role: 'release-manager' })]);
    const afterSignal = await eventually(async () => {
      const snapshot = await pipelineStatus(stack.client, workflowId);
      return snapshot.decisions.length === 1 && snapshot;
    }, 'the signal refusal on record');
    expect(decisionsOf(afterSignal)).toEqual([['alice', false, 'alice requested this change and cannot approve it']]);

    const unknown = await handleChatCommand(`/dbchange approve ${workflowId}`, { user: 'zed', role: 'release-manager' }, temporal);
    expect(unknown).toEqual({ accepted: false, text: `refused: zed is not a configured approver (add them under approvers in dbchange.yaml) (${workflowId}, zed as release-manager)` });
    // The same handler as a process, the way a chat bot would shell out to it: the answer printed, exit 3 on refusal.
    const printed = await run(process.execPath, [HANDLER_SCRIPT, `/dbchange approve ${workflowId}`], {
      env: { ...process.env, CHAT_USER: 'bob', CHAT_ROLE: 'release-manager', TEMPORAL_CLI_PATH: temporal.cli, TEMPORAL_ADDRESS: server.address },
    }).catch((error: { code: number; stdout: string }) => error);
    expect(printed).toMatchObject({ code: 3, stdout: `refused: bob does not hold the role release-manager (holds: manager) (${workflowId}, bob as release-manager)\n` });
    const missing = await handleChatCommand('/dbchange approve pdm-nowhere', { user: 'alice', role: 'release-manager' }, temporal);
    expect(missing.accepted).toBe(false);
    expect(missing.text).toMatch(/^could not approve pdm-nowhere: .*not found/i);
    expect((await pipelineStatus(stack.client, workflowId)).stage).toBe('waiting-approval');

    const approved = await handleChatCommand(`/dbchange approve ${workflowId} QA green on staging`, { user: 'carol', role: 'release-manager' }, temporal);
    expect(approved).toEqual({ accepted: true, text: `approved: approved chat-production as release-manager (${workflowId}, carol as release-manager)` });
    const result: PipelineStatus = await stack.client.workflow.getHandle(workflowId).result();
    expect(result.stage).toBe('complete');
    expect(result.decisions.map((decision) => [decision.user, decision.accepted, decision.comment])).toEqual([
      ['alice', false, undefined],
      ['zed', false, undefined],
      ['bob', false, undefined],
      ['carol', true, 'QA green on staging'],
    ]);
  });

  it('reads chat commands and answers malformed ones with the usage', () => {
    expect(parseChatCommand('/dbchange approve pdm-staging+production')).toEqual({ decision: 'approve', workflowId: 'pdm-staging+production' });
    expect(parseChatCommand('  /dbchange approve pdm-a+b  QA  green ')).toEqual({ decision: 'approve', workflowId: 'pdm-a+b', comment: 'QA green' });
    expect(parseChatCommand('/dbchange approve')).toEqual({ error: expect.stringMatching(/^which pipeline\? usage: \/dbchange approve <workflow-id>/) });
    expect(parseChatCommand('/dbchange deploy pdm-a')).toEqual({ error: expect.stringMatching(/^unknown action "deploy"; usage:/) });
    expect(parseChatCommand('/deploy now')).toEqual({ error: expect.stringMatching(/^not a dbchange command; usage:/) });
  });

  it('a chat gateway signs for the people it authenticated: dbchange.yaml trusts its key for the users it lists, and no one else', async () => {
    const keys = mkdtempSync(join(tmpdir(), 'dbchange-gateway-'));
    try {
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'chatops-gateway', '-f', join(keys, 'gateway')]);
      const gatewayKey = readFileSync(join(keys, 'gateway.pub'), 'utf8').trim();
      const workflowId = await pipelineAtGate('gate', 'dave', [
        'approvers:',
        '  alice: [release-manager]',
        '  carol: [release-manager]',
        'approvals: { signatures: required }',
        `gateways: { chatops: { keys: ["${gatewayKey}"], actsFor: [alice] } }`,
      ]);
      const temporal = { cli: inject('temporalCli'), address: server.address };
      const outsider = await handleChatCommand(`/dbchange approve ${workflowId}`, { user: 'carol', role: 'release-manager' }, temporal, join(keys, 'gateway'));
      expect(outsider.accepted).toBe(false);
      expect(outsider.text).toContain('gateway chatops may not act for carol (actsFor: alice)');
      const unsigned = await handleChatCommand(`/dbchange approve ${workflowId}`, { user: 'alice', role: 'release-manager' }, temporal);
      expect(unsigned.text).toContain('signatures are required');
      const approved = await handleChatCommand(`/dbchange approve ${workflowId} via chat`, { user: 'alice', role: 'release-manager' }, temporal, join(keys, 'gateway'));
      expect(approved).toEqual({ accepted: true, text: `approved: approved gate-production as release-manager (${workflowId}, alice as release-manager)` });
      const result: PipelineStatus = await stack.client.workflow.getHandle(workflowId).result();
      expect(result.stage).toBe('complete');
      expect(result.decisions.find((decision) => decision.accepted)?.signature).toMatchObject({ signer: 'gateway chatops', fingerprint: expect.stringMatching(/^SHA256:/) });
    } finally {
      rmSync(keys, { recursive: true, force: true });
    }
  });

  it('replays every history it produced without nondeterminism', async () => {
    expect(await replayWorkflows(stack, workflowIds)).toBe(workflowIds.length);
  });
});
