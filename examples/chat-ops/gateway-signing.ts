// A chat-ops gateway that signs: the chat platform has authenticated the person, and the gateway vouches for them
// with its own SSH key, which dbchange.yaml trusts for the users it lists (`gateways: { chatops: { keys, actsFor } }`).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { signStatement } from '../../activities/ssh-signatures';
import { statementText } from '../../core/decision-statement';
import type { SignedDecision, SigningGate } from '../../core/decisions';
import type { TemporalTarget } from './handler';

const run = promisify(execFile);
/** A chat approval is sent at once: its statement needs to live only minutes. */
const STATEMENT_LIFETIME_MS = 10 * 60_000;

/** Signs `user`'s approval in `role` of what `workflowId` waits for now, with the gateway's key. */
export async function signAsGateway(temporal: TemporalTarget, workflowId: string, user: string, role: string, keyFile: string): Promise<SignedDecision> {
  const args = ['workflow', 'query', '--address', temporal.address, '--namespace', temporal.namespace ?? 'default', '--workflow-id', workflowId, '--type', 'status', '--output', 'json'];
  const { stdout } = await run(temporal.cli, args, { timeout: 30_000 });
  const signing = (JSON.parse(stdout) as { queryResult?: { signing?: SigningGate }[] }).queryResult?.[0]?.signing;
  if (!signing) throw new Error(`${workflowId} is not waiting for a decision that can be signed now`);
  const statement = statementText({ version: 1, workflowId, runId: signing.runId, decision: 'approve', gate: signing.gate, role, user, digest: signing.digest, expires: new Date(Date.now() + STATEMENT_LIFETIME_MS).toISOString() });
  return { statement, signature: await signStatement(statement, keyFile) };
}
