// approve, reject, resolve: a person's decision, answered at once (accepted, or refused and why).
import type { Command } from 'commander';
import { RESOLVE_ACTIONS, type ResolveAction } from '../../core/decisions';
import type { CommandContext } from '../context';
import { CliError, EXIT, printJson } from '../output';
import { SIGNING_HELP, signedPart, withSigningOptions, type SigningOptions } from '../decision-signing';
import { sendDecision } from '../pipeline-client';
import type { DecisionAnswer } from '../../workflows/messages';

export function registerDecisionCommands(program: Command, context: CommandContext): void {
  const approve = program
    .command('approve <workflow-id>')
    .description('approve the gate a pipeline or change request is waiting at')
    .requiredOption('--as <user>', 'who approves (must be listed under approvers in dbchange.yaml)')
    .requiredOption('--role <role>', 'the role you approve in, e.g. release-manager')
    .option('--comment <text>', 'recorded with the approval')
    .option('--checksum <sha256>', 'change requests: the checksum of the file you reviewed (12+ characters, from `dbchange cr validate`)')
    .option('--json', 'print the answer as JSON');
  withSigningOptions(approve)
    .addHelpText(
      'after',
      '\nExamples:\n  dbchange approve pdm-staging+production --as alice --role release-manager --comment "QA green"\n  dbchange approve cr-drop-premature-fk-3f92913d27 --as alice --role eoc --checksum 5f1c0e9a2b7d --sign-with ~/.ssh/id_ed25519\n' +
        `${SIGNING_HELP}\n\nExit codes: 0 accepted, 3 refused (the reason is printed and recorded in the workflow).`,
    )
    .action(async (workflowId: string, options: { as: string; role: string; comment?: string; checksum?: string; json?: boolean } & SigningOptions) => {
      const client = await context.client();
      const signed = await signedPart(client, workflowId, { decision: 'approve', user: options.as, role: options.role }, options);
      if (signed === 'printed') return;
      const answer = await sendDecision(client, workflowId, 'approve', { user: options.as, role: options.role, comment: options.comment, checksum: options.checksum, ...signed });
      report(workflowId, 'approve', answer, options.json);
    });

  const reject = program
    .command('reject <workflow-id>')
    .description('reject the gate a pipeline or change request is waiting at; it ends without going further')
    .requiredOption('--as <user>', 'who rejects')
    .requiredOption('--reason <text>', 'why, recorded in the workflow and in notifications')
    .option('--json', 'print the answer as JSON');
  withSigningOptions(reject)
    .addHelpText('after', `\nExample:\n  dbchange reject pdm-staging+production --as alice --reason "QA flaky, re-run tomorrow"\n${SIGNING_HELP}`)
    .action(async (workflowId: string, options: { as: string; reason: string; json?: boolean } & SigningOptions) => {
      const client = await context.client();
      const signed = await signedPart(client, workflowId, { decision: 'reject', user: options.as }, options);
      if (signed === 'printed') return;
      const answer = await sendDecision(client, workflowId, 'reject', { user: options.as, reason: options.reason, ...signed });
      report(workflowId, 'reject', answer, options.json);
    });

  const resolve = program
    .command('resolve <workflow-id>')
    .description('decide how a blocked pipeline or change request goes on after a failure')
    .requiredOption('--as <user>', 'who decides (must be listed under approvers)')
    .requiredOption('--action <action>', `one of ${RESOLVE_ACTIONS.join(', ')}`)
    .option('--target <name>', 'fleets: the blocked target this decision is about, or all-blocked')
    .option('--comment <text>', 'recorded with the decision')
    .option('--json', 'print the answer as JSON');
  withSigningOptions(resolve)
    .addHelpText(
      'after',
      [
        '',
        'Fleets: a blocked target waits for a decision about it; the rest of its wave goes on.',
        '  --target NAME|all-blocked with retry (run it again), mark-complete (record its failed migration as applied,',
        '  then run the rest) or abort (give it up: it counts toward haltAfterFailures). abort without --target ends the pipeline.',
        '',
        'Actions:',
        '  retry          run the failed step again (e.g. after the data was fixed)',
        '  mark-complete  pipelines: record the failed migration (or the refused out-of-order ones) as applied without running it',
        '  rollback       change requests: run the rollback steps on every environment the change touched',
        '  abort          end the pipeline, change or backfill as failed; nothing more is applied',
        '  skip-batch     backfills: record the failed batch\'s key range as skipped (in the ledger) and go on',
        '',
        'Example:',
        '  dbchange resolve pdm-staging+production --as alice --action retry --comment "orphans deleted in CR-42"',
        '  dbchange resolve pdm-cells --as alice --target cell-042 --action retry',
        SIGNING_HELP,
      ].join('\n'),
    )
    .action(async (workflowId: string, options: { as: string; action: string; target?: string; comment?: string; json?: boolean } & SigningOptions) => {
      if (!(RESOLVE_ACTIONS as readonly string[]).includes(options.action)) {
        throw new CliError(`--action must be one of ${RESOLVE_ACTIONS.join(', ')}; got "${options.action}"`, EXIT.refused);
      }
      const client = await context.client();
      const target = options.target ? { target: options.target } : {};
      const signed = await signedPart(client, workflowId, { decision: 'resolve', user: options.as, action: options.action, ...target }, options);
      if (signed === 'printed') return;
      const answer = await sendDecision(client, workflowId, 'resolve', {
        user: options.as,
        action: options.action as ResolveAction,
        comment: options.comment,
        ...target,
        ...signed,
      });
      report(workflowId, 'resolve', answer, options.json);
    });
}

function report(workflowId: string, kind: string, answer: DecisionAnswer, json?: boolean): void {
  if (json) printJson('decision', { workflowId, decision: kind, ...answer });
  else process.stdout.write(`${answer.accepted ? 'accepted' : 'refused'}: ${answer.reason}\n`);
  if (!answer.accepted) process.exitCode = EXIT.refused;
}
