// audit <workflow-id>: re-verifies every accepted decision of a pipeline or change request against the keys in
// dbchange.yaml (or an allowed_signers file), from what the workflow recorded, across its runs, closed or not.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { verifyDecision, type SigningKeys } from '../../activities/ssh-signatures';
import { PUBLIC_KEY_TYPES } from '../../core/approvers';
import { parseStatement } from '../../core/decision-statement';
import type { DecisionRecord } from '../../core/decisions';
import type { CommandContext } from '../context';
import { CliError, EXIT, printJson } from '../output';
import { status } from '../../workflows/messages';

/** How an allowed_signers file names a gateway's key (the principal ssh-keygen verifies it as). */
const GATEWAY_PRINCIPAL = 'gateway:';

interface AuditEntry {
  at: string;
  kind: DecisionRecord['kind'];
  user: string;
  role?: string;
  action?: string;
  gate?: string;
  digest?: string;
  signer?: string;
  fingerprint?: string;
  verified: boolean;
  problem?: string;
}

export function registerAuditCommand(program: Command, context: CommandContext): void {
  program
    .command('audit <workflow-id>')
    .description('re-verify every accepted decision of a pipeline or change request: who, which role, which key, what digest, when')
    .option('--allowed-signers <file>', "verify against this OpenSSH allowed_signers file instead of dbchange.yaml's keys")
    .option('--json', 'print as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  dbchange audit pdm-staging+production\n  dbchange audit cr-drop-premature-fk-3f92913d27 --allowed-signers ./allowed_signers --json\n\n' +
        'Reads what the workflow recorded (its result, or its status while it runs; a pipeline that continued as new carries\n' +
        'every decision), and checks each signature again with ssh-keygen -Y verify. Exit codes: 0 every accepted decision\n' +
        'verifies, 1 one does not (or was not signed), 3 the workflow or the file cannot be read.',
    )
    .action(async (workflowId: string, options: { allowedSigners?: string; json?: boolean }) => {
      const config = options.allowedSigners ? keysFromAllowedSigners(options.allowedSigners, (gateway) => gatewayActsFor(context, gateway)) : context.config();
      const decisions = (await recordedDecisions(await context.client(), workflowId)).filter((decision) => decision.accepted);
      const entries: AuditEntry[] = [];
      for (const decision of decisions) entries.push(await audit(config, workflowId, decision));
      const failed = entries.filter((entry) => !entry.verified);
      if (options.json) printJson('audit', { workflowId, decisions: entries, verified: failed.length === 0 });
      else {
        process.stdout.write(`${workflowId}: ${entries.length} accepted decision${entries.length === 1 ? '' : 's'}, ${failed.length === 0 ? 'all verified' : `${failed.length} not verified`}\n`);
        for (const entry of entries) {
          const what = [entry.role && `as ${entry.role}`, entry.action && `action ${entry.action}`, entry.gate && `at ${entry.gate}`].filter(Boolean).join(' ');
          const how = entry.verified ? `signed by ${entry.signer} with ${entry.fingerprint}, digest ${entry.digest}` : `NOT VERIFIED: ${entry.problem}`;
          process.stdout.write(`  ${entry.at} ${entry.user} ${entry.kind}${what ? ` ${what}` : ''}: ${how}\n`);
        }
      }
      process.exitCode = failed.length === 0 ? EXIT.ok : EXIT.failure;
    });
}

/** Whom a gateway may act for, from dbchange.yaml when there is one to read (an allowed_signers file cannot say). */
function gatewayActsFor(context: CommandContext, gateway: string): string[] {
  try {
    return context.config().gateways[gateway]?.actsFor ?? [];
  } catch {
    return [];
  }
}

/** One accepted decision, checked again: its statement must name this workflow and this person, and verify. */
async function audit(config: SigningKeys, workflowId: string, decision: DecisionRecord): Promise<AuditEntry> {
  const entry: AuditEntry = { at: decision.at, kind: decision.kind, user: decision.user, role: decision.role, action: decision.action, gate: decision.environment, verified: false };
  const signed = decision.signature;
  if (!signed) return { ...entry, problem: 'not signed' };
  const parsed = parseStatement(signed.statement);
  if (!parsed.ok) return { ...entry, problem: `the recorded statement does not parse: ${parsed.error}` };
  const statement = parsed.statement;
  if (statement.workflowId !== workflowId || statement.user !== decision.user || statement.decision !== decision.kind) {
    return { ...entry, problem: `the statement names ${statement.decision} by ${statement.user} on ${statement.workflowId}` };
  }
  const verdict = await verifyDecision(config, { user: decision.user, text: signed.statement, signature: signed.signature });
  if (!verdict.ok) return { ...entry, digest: statement.digest, problem: verdict.reason };
  return { ...entry, gate: statement.gate, digest: statement.digest, signer: verdict.signer, fingerprint: verdict.fingerprint, verified: true };
}

/** Every decision the workflow recorded: its final status (result, or a failure's details), or its status now. */
async function recordedDecisions(client: Awaited<ReturnType<CommandContext['client']>>, workflowId: string): Promise<DecisionRecord[]> {
  const handle = client.workflow.getHandle(workflowId);
  try {
    const description = await handle.describe();
    if (description.status.name === 'RUNNING') return (await handle.query(status)).decisions;
    const result = (await handle.result()) as { decisions?: DecisionRecord[] };
    return result.decisions ?? [];
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) throw new CliError(`no workflow ${workflowId}; list them with \`dbchange pdm status\``, EXIT.refused);
    if (error instanceof WorkflowFailedError && error.cause instanceof ApplicationFailure) {
      const [snapshot] = (error.cause.details ?? []) as ({ decisions?: DecisionRecord[] } | undefined)[];
      if (snapshot?.decisions) return snapshot.decisions;
    }
    if (error instanceof WorkflowFailedError) throw new CliError(`${workflowId} ended without a record of its decisions (${error.cause?.message ?? error.message})`, EXIT.refused);
    throw error;
  }
}

/**
 * An allowed_signers file (`principals [options] keytype base64 [comment]`) as the keys dbchange checks against.
 * A `gateway:NAME` principal is that gateway; whom it may act for comes from dbchange.yaml's gateways, if readable.
 */
function keysFromAllowedSigners(file: string, actsFor: (gateway: string) => string[]): SigningKeys {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new CliError(`--allowed-signers ${file}: cannot read it`, EXIT.refused);
  }
  const keys: SigningKeys = { approverKeys: {}, gateways: {} };
  for (const line of text.split('\n').map((item) => item.trim()).filter((item) => item && !item.startsWith('#'))) {
    const [principals, ...rest] = line.split(/\s+/);
    // Options (namespaces="…", valid-after=…) come before the key, whose type is one OpenSSH knows.
    const at = rest.findIndex((part) => PUBLIC_KEY_TYPES.includes(part as (typeof PUBLIC_KEY_TYPES)[number]));
    if (at < 0) throw new CliError(`--allowed-signers ${file}: no public key on the line for ${principals}`, EXIT.refused);
    const key = rest.slice(at).join(' ');
    for (const principal of principals.split(',')) {
      if (principal.startsWith(GATEWAY_PRINCIPAL)) {
        const name = principal.slice(GATEWAY_PRINCIPAL.length);
        const gateway = (keys.gateways[name] ??= { keys: [], actsFor: actsFor(name) });
        gateway.keys.push(key);
      } else keys.approverKeys[principal] = [...(keys.approverKeys[principal] ?? []), key];
    }
  }
  return keys;
}
