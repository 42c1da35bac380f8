// Signing a decision from the command line: the statement comes from what the workflow waits for now (its status),
// and is signed here with an SSH key (ssh-keygen -Y sign), printed for signing elsewhere, or read back signed.
import { existsSync, readFileSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import { signStatement } from '../activities/ssh-signatures';
import { statementText, type DecisionStatement } from '../core/decision-statement';
import type { SignedDecision } from '../core/decisions';
import { parseDuration } from '../core/duration';
import { status } from '../workflows/messages';
import { CliError, EXIT } from './output';

export const DEFAULT_STATEMENT_LIFETIME = '1h';

export interface SigningOptions {
  signWith?: string;
  signature?: string;
  statement?: string;
  printStatement?: boolean;
  expires?: string;
}

type DecisionFields = Pick<DecisionStatement, 'decision' | 'user' | 'role' | 'action' | 'target'>;

/** The commander options every decision command takes for signing. */
export const SIGNING_HELP = [
  '',
  'Signed decisions (approvers with keys in dbchange.yaml; approvals.signatures: required makes them mandatory):',
  '  --sign-with ~/.ssh/id_ed25519   sign here with ssh-keygen -Y sign (a .pub file signs through ssh-agent)',
  '  --print-statement               print the exact statement to sign elsewhere, and send nothing:',
  '                                  ssh-keygen -Y sign -f KEY -n dbchange-decision statement.txt',
  '  --signature statement.txt.sig   send a signature made elsewhere (the statement is the same path without .sig,',
  '                                  or --statement FILE)',
  '  --expires 1h                    how long a statement printed or signed here stays valid (at most 7d)',
].join('\n');

/** The options every decision command takes for signing (their help is SIGNING_HELP). */
export function withSigningOptions(command: Command): Command {
  return command
    .option('--sign-with <keyfile>', 'sign the decision with this SSH private key (or a .pub through ssh-agent)')
    .option('--signature <file>', 'send a signature made elsewhere with ssh-keygen -Y sign')
    .option('--statement <file>', 'the statement that --signature signs (default: the signature path without .sig)')
    .option('--print-statement', 'print the statement to sign, and send nothing')
    .option('--expires <duration>', 'how long the statement stays valid (default 1h, at most 7d)');
}

/** The `signed` part of a decision as the options ask, or 'printed' when the statement was only printed. */
export async function signedPart(client: Client, workflowId: string, decision: DecisionFields, options: SigningOptions): Promise<{ signed?: SignedDecision } | 'printed'> {
  const ways = [options.signWith, options.signature, options.printStatement].filter(Boolean).length;
  if (ways > 1) throw new CliError('use one of --sign-with, --signature and --print-statement', EXIT.refused);
  if (options.printStatement) {
    process.stdout.write(await statementFor(client, workflowId, decision, options.expires));
    return 'printed';
  }
  if (options.signWith) {
    const statement = await statementFor(client, workflowId, decision, options.expires);
    return { signed: { statement, signature: await signStatement(statement, options.signWith) } };
  }
  if (options.signature) {
    const statementFile = options.statement ?? options.signature.replace(/\.sig$/, '');
    if (statementFile === options.signature || !existsSync(statementFile)) {
      throw new CliError(`--signature ${options.signature}: the signed statement ${statementFile} is not there; name it with --statement FILE`, EXIT.refused);
    }
    return { signed: { statement: readFileSync(statementFile, 'utf8'), signature: readFileSync(options.signature, 'utf8') } };
  }
  return {};
}

/** The statement a decision on `workflowId` must sign now: its run, the gate it waits at and what that gate permits. */
async function statementFor(client: Client, workflowId: string, decision: DecisionFields, expires = DEFAULT_STATEMENT_LIFETIME): Promise<string> {
  const lifetimeMs = parseDuration(expires);
  if (lifetimeMs === undefined || lifetimeMs <= 0) throw new CliError(`--expires: expected a duration such as 30m or 1h, got "${expires}"`, EXIT.refused);
  const { signing } = await client.workflow.getHandle(workflowId).query(status);
  if (!signing) {
    throw new CliError(`${workflowId} is not waiting for a decision that can be signed now (a workflow checks signatures when it was started with approvals: in dbchange.yaml)`, EXIT.refused);
  }
  return statementText({ version: 1, workflowId, runId: signing.runId, gate: signing.gate, digest: signing.digest, ...decision, expires: new Date(Date.now() + lifetimeMs).toISOString() });
}
