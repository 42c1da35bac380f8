// Reads a chat message such as "/dbchange approve pdm-staging+production looks good" into a decision request.
export interface ChatApproveCommand {
  decision: 'approve';
  workflowId: string;
  comment?: string;
}

export const CHAT_USAGE = 'usage: /dbchange approve <workflow-id> [comment], e.g. /dbchange approve pdm-staging+production QA green';

/** Returns the command, or a reply that says how to write it. */
export function parseChatCommand(text: string): ChatApproveCommand | { error: string } {
  const [command, verb, workflowId, ...comment] = text.trim().split(/\s+/);
  if (command !== '/dbchange') return { error: `not a dbchange command; ${CHAT_USAGE}` };
  if (verb !== 'approve') return { error: `unknown action "${verb ?? ''}"; ${CHAT_USAGE}` };
  if (!workflowId) return { error: `which pipeline? ${CHAT_USAGE}` };
  return { decision: 'approve', workflowId, ...(comment.length > 0 ? { comment: comment.join(' ') } : {}) };
}
