// The CLI piped into a reader that leaves early (`dbchange … | head`): no EPIPE stack trace, the command's own exit code.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../cli/output';
import { assertBuilt, REPO_ROOT, runCliWithStdoutClosed, type CliTarget } from '../helpers/processes';
import { migration } from '../helpers/project';
import { replayWorkflows } from '../helpers/stack';
import { useSuite } from '../helpers/suite';

const WORKFLOW_ID = 'pdm-pipe-staging+pipe-production';
const MIGRATIONS = { '20241201000001_create_pipe_items.sql': migration('CREATE TABLE pipe_items (id bigint PRIMARY KEY);') };

describe('dbchange piped into a reader that leaves early', () => {
  const suite = useSuite();
  let target: CliTarget;

  beforeAll(async () => {
    assertBuilt();
    const project = await suite.project('pipe', {
      environments: [{ name: 'pipe-staging' }, { name: 'pipe-production', approvalRoles: ['release-manager'] }],
      migrations: MIGRATIONS,
    });
    target = { address: suite.stack.address, taskQueue: 'unused', configPath: project.configPath };
    await suite.startPipeline(project);
    await suite.waitForStage(WORKFLOW_ID, 'waiting-approval');
  });

  it('exits 0 without a stack trace when its help goes to a reader that has already left', async () => {
    for (const args of [['--help'], ['cr', '--help'], ['pdm', 'status', '--help']]) {
      const result = await runCliWithStdoutClosed(target, args);
      expect(result, args.join(' ')).toEqual({ code: EXIT.ok, stderr: '' });
    }
  });

  it('keeps the exit code of what it reports, without a stack trace, when --json or status text goes to a reader that has left', async () => {
    const cases: { args: string[]; code: number }[] = [
      { args: ['pdm', 'status', WORKFLOW_ID, '--json'], code: EXIT.needsHuman },
      { args: ['pdm', 'status', WORKFLOW_ID], code: EXIT.needsHuman },
      { args: ['pdm', 'status', '--json'], code: EXIT.ok },
      { args: ['migrations', 'pending', '--json'], code: EXIT.ok },
      { args: ['migrations', 'pending'], code: EXIT.ok },
    ];
    for (const { args, code } of cases) {
      const result = await runCliWithStdoutClosed(target, args);
      expect(result, args.join(' ')).toEqual({ code, stderr: '' });
    }
  });

  it('in a pipefail shell, `| head -1` gets the first line and dbchange exits with its own code and nothing on stderr', async () => {
    const env = { ...process.env, TEMPORAL_ADDRESS: target.address, DBCHANGE_CONFIG: target.configPath };
    const pipes = [
      { command: 'node bin/dbchange.js --help', first: 'Usage: dbchange [options] [command]', code: EXIT.ok },
      { command: `node bin/dbchange.js pdm status ${WORKFLOW_ID} --json`, first: '{', code: EXIT.needsHuman },
      { command: `node bin/dbchange.js pdm status ${WORKFLOW_ID}`, first: `${WORKFLOW_ID}: `, code: EXIT.needsHuman },
    ];
    for (const pipe of pipes) {
      const script = `set -o pipefail; err=$(mktemp); ${pipe.command} 2>"$err" | head -1; echo "exit: \${PIPESTATUS[*]}"; cat "$err" >&2; rm -f "$err"`;
      const { stdout, stderr } = await promisify(execFile)('bash', ['-c', script], { cwd: REPO_ROOT, env });
      const [first, status] = stdout.trimEnd().split('\n');
      expect(first, pipe.command).toContain(pipe.first);
      expect(status, pipe.command).toBe(`exit: ${pipe.code} 0`);
      expect(stderr, pipe.command).toBe('');
    }
  });

  it('replays the pipeline it ran without nondeterminism', async () => {
    expect(await replayWorkflows(suite.stack, suite.workflowIds)).toBe(1);
  });
});
