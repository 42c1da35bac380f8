// A chat-ops handler: "/dbchange approve <workflow-id>" from a chat user becomes one Temporal update, answered at once.
// It needs only the Temporal CLI, not dbchange: the workflow validates who may approve, so the bot holds no rules.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { approveFromChat } from '../demo/chat-approval';
import { parseChatCommand } from './chat-command';
import { signAsGateway } from './gateway-signing';

/** Who speaks, as the chat platform knows them; the role comes from the chat's own groups. */
export interface ChatContext {
  user: string;
  role: string;
}

export interface TemporalTarget {
  cli: string;
  address: string;
  namespace?: string;
}

export interface ChatReply {
  text: string;
  accepted: boolean;
}

/**
 * `gatewayKey`: the gateway's private SSH key; with it the approval is signed as the gateway acting for the chat user
 * (dbchange.yaml `gateways:` lists which users it may act for).
 */
export async function handleChatCommand(text: string, context: ChatContext, temporal: TemporalTarget, gatewayKey?: string): Promise<ChatReply> {
  const command = parseChatCommand(text);
  if ('error' in command) return { text: command.error, accepted: false };
  try {
    const signed = gatewayKey ? { signed: await signAsGateway(temporal, command.workflowId, context.user, context.role, gatewayKey) } : {};
    const approval = { user: context.user, role: context.role, comment: command.comment, ...signed };
    const { answer } = await approveFromChat(temporal.cli, temporal.address, command.workflowId, approval, temporal.namespace);
    return { text: `${answer.accepted ? 'approved' : 'refused'}: ${answer.reason} (${command.workflowId}, ${context.user} as ${context.role})`, accepted: answer.accepted };
  } catch (error) {
    // The CLI names what went wrong (no such workflow, a payload the validator refused) on its last stderr line.
    const stderr = (error as { stderr?: string }).stderr?.trim().split('\n').pop();
    return { text: `could not approve ${command.workflowId}: ${stderr || (error as Error).message}`, accepted: false };
  }
}

// Run as `node dist/examples/chat-ops/handler.js "/dbchange approve pdm-staging+production"` with CHAT_USER and CHAT_ROLE set,
// and CHAT_GATEWAY_KEY (the gateway's private key file) to sign as the gateway.
if (require.main === module) {
  const [text = ''] = process.argv.slice(2);
  const { CHAT_USER: user, CHAT_ROLE: role } = process.env;
  if (!user || !role) {
    process.stderr.write('set CHAT_USER and CHAT_ROLE: the chat platform says who speaks and in which role\n');
    process.exit(3);
  }
  void (async () => {
    const cli = process.env.TEMPORAL_CLI_PATH ?? (await promisify(execFile)('bash', ['-c', 'command -v temporal'])).stdout.trim();
    const temporal = { cli, address: process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233', namespace: process.env.TEMPORAL_NAMESPACE };
    const reply = await handleChatCommand(text, { user, role }, temporal, process.env.CHAT_GATEWAY_KEY);
    process.stdout.write(`${reply.text}\n`);
    process.exit(reply.accepted ? 0 : 3);
  })();
}
