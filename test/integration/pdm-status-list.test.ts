import { beforeAll, describe, expect, it } from 'vitest';
import { pipelineStatus } from '../../cli/pipeline-client';
import { assertBuilt, parseJsonOutput, runCli, type CliTarget } from '../helpers/processes';
import { migration } from '../helpers/project';
import { eventually, replayWorkflows } from '../helpers/stack';
import { useSuite } from '../helpers/suite';

const MIGRATIONS = { '20241101000001_create_payouts.sql': migration('CREATE TABLE list_payouts (id bigint PRIMARY KEY);') };
const WAITING = 'pdm-list-staging+list-production';
const STOPPED = 'pdm-list-stopped';

interface ListJson {
  version: number;
  kind: string;
  pipelines: { workflowId: string; status: string; waitingFor?: string; startTime: string; closeTime?: string }[];
}

describe('dbchange pdm status without arguments', () => {
  const suite = useSuite();
  let target: CliTarget;

  beforeAll(async () => {
    assertBuilt();
    const waiting = await suite.project('list', {
      environments: [{ name: 'list-staging' }, { name: 'list-production', approvalRoles: ['release-manager'] }],
      migrations: MIGRATIONS,
    });
    const stopped = await suite.project('liststop', { environments: [{ name: 'list-stopped', approvalRoles: ['release-manager'] }], migrations: MIGRATIONS });
    target = { address: suite.stack.address, taskQueue: 'unused', configPath: waiting.configPath };

    await suite.startPipeline(waiting);
    await suite.waitForStage(WAITING, 'waiting-approval');
    // Started second, so visibility lists it first; then ended from outside while it waited.
    await suite.startPipeline(stopped);
    await suite.waitForStage(STOPPED, 'waiting-approval');
    await suite.stack.client.workflow.getHandle(STOPPED).terminate('test: ended by an operator');
  });

  it('lists the running pipeline first with what it waits for, and a terminated one as terminated', async () => {
    await eventually(async () => {
      const json = parseJsonOutput<ListJson>(await runCli(target, ['pdm', 'status', '--json']));
      return json.pipelines.some((item) => item.workflowId === STOPPED && item.closeTime);
    }, 'the terminated pipeline closed in visibility');

    const text = await runCli(target, ['pdm', 'status']);
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.split('\n');
    const waitingLine = lines.findIndex((line) => line.startsWith(WAITING));
    const stoppedLine = lines.findIndex((line) => line.startsWith(STOPPED));
    expect(waitingLine).toBeGreaterThanOrEqual(0);
    expect(stoppedLine).toBeGreaterThan(waitingLine);
    expect(lines[waitingLine]).toMatch(/^pdm-list-staging\+list-production\s+waiting-approval\s+\d{4}-\d\d-\d\dT\S+\s+waiting for approval by release-manager before list-production$/);
    expect(lines[stoppedLine]).toMatch(/^pdm-list-stopped\s+terminated\s+\d{4}-/);

    const json = parseJsonOutput<ListJson>(await runCli(target, ['pdm', 'status', '--json']));
    expect(json).toMatchObject({ version: 1, kind: 'pdm-list' });
    const ours = json.pipelines.filter((item) => item.workflowId === WAITING || item.workflowId === STOPPED);
    expect(ours.map((item) => [item.workflowId, item.status, item.waitingFor])).toEqual([
      [WAITING, 'waiting-approval', 'waiting for approval by release-manager before list-production'],
      [STOPPED, 'terminated', undefined],
    ]);
    expect((await pipelineStatus(suite.stack.client, WAITING)).stage).toBe('waiting-approval');
  });

  it('errors name the fix: an unknown pipeline, a Temporal that is not there', async () => {
    const missing = await runCli(target, ['approve', 'pdm-nowhere', '--as', 'alice', '--role', 'release-manager']);
    expect(missing).toMatchObject({ code: 1, stdout: '', stderr: 'dbchange: no workflow pdm-nowhere; list pipelines with `dbchange pdm status`\n' });

    const unreachable = await runCli({ ...target, address: '127.0.0.1:1' }, ['pdm', 'status'], { timeoutMs: 60_000 });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/^dbchange: cannot reach Temporal at 127\.0\.0\.1:1 \(.+\); set TEMPORAL_ADDRESS \(or TEMPORAL_PROFILE\) to your server, or start one with `dbchange dev`\n$/);
  });

  it('replays every history it produced without nondeterminism', async () => {
    expect(await replayWorkflows(suite.stack, suite.workflowIds)).toBe(2);
  });
});
