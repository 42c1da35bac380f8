// Sends a decision the way chat tooling would: one `temporal workflow update execute` call, answer read back as JSON.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Approval } from '../../core/decisions';
import type { DecisionAnswer } from '../../workflows/messages';

const run = promisify(execFile);

export interface ChatApproval {
  /** The command as a person would type it, for the demo's output. */
  command: string;
  answer: DecisionAnswer;
}

export async function approveFromChat(temporalCli: string, address: string, workflowId: string, approval: Approval, namespace = 'default'): Promise<ChatApproval> {
  const args = [
    'workflow', 'update', 'execute',
    '--address', address,
    '--namespace', namespace,
    '--workflow-id', workflowId,
    '--name', 'approve',
    '--input', JSON.stringify(approval),
    '--output', 'json',
  ];
  const { stdout } = await run(temporalCli, args, { timeout: 30_000 });
  const reply = JSON.parse(stdout) as { result?: DecisionAnswer };
  if (!reply.result) throw new Error(`temporal workflow update execute answered without a result: ${stdout.trim()}`);
  return { command: `temporal ${args.map(shellQuote).join(' ')}`, answer: reply.result };
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
