// backfill start|status|pause|resume|cancel: data changes that walk a table in self-pacing batches.
import type { Command } from 'commander';
import { backfillWorkflowId } from '../../core/backfill';
import { describeBackfillStatus, type BackfillStatus } from '../../core/backfill-status';
import { controlBackfill, isBackfillOver, readBackfillStatus, startBackfill, type BackfillControlKind } from '../backfill-client';
import type { CommandContext } from '../context';
import { currentUser } from '../context';
import { SIGNING_HELP, signedPart, withSigningOptions, type SigningOptions } from '../decision-signing';
import { createLiveLine, EXIT, printJson, progress } from '../output';

const FOLLOW_EVERY_MS = 1_000;

export function registerBackfillCommands(program: Command, context: CommandContext): void {
  const backfill = program
    .command('backfill')
    .description('backfills: a data change walked over a table in batches that size and pace themselves')
    .addHelpText('after', '\nExamples:\n  dbchange backfill start backfill_ci_runners --env staging --follow\n  dbchange backfill status backfill_ci_runners --env staging\n  dbchange backfill pause backfill_ci_runners --env production --as alice --comment "replica maintenance"');

  backfill
    .command('start <name>')
    .description('start backfill-<env>-<name>: the file <version>_<name>.yaml of migrations.backfills, on one environment')
    .requiredOption('--env <name>', 'the environment')
    .option('--as <user>', 'who starts it (default: $DBCHANGE_USER or $USER)')
    .option('--follow', 'stay and show progress until it ends')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  dbchange backfill start backfill_ci_runners --env staging --follow\n\nExit codes: 0 started (with --follow: finished), 1 cancelled or aborted, 2 (with --follow) blocked for a person, 3 refused (already running, or an invalid file).')
    .action(async (name: string, options: { env: string; as?: string; follow?: boolean; json?: boolean }) => {
      const client = await context.client();
      const workflowId = await startBackfill(client, context.config(), { name, environment: options.env, requestedBy: currentUser(options.as), taskQueue: context.taskQueue });
      progress(`started ${workflowId}; see it with \`dbchange backfill status ${name} --env ${options.env}\``);
      if (!options.follow) {
        if (options.json) printJson('backfill-started', { workflowId });
        return;
      }
      const final = await follow(() => readBackfillStatus(client, options.env, name));
      print(final, options.json);
      process.exitCode = exitCodeFor(final);
    });

  backfill
    .command('status <name>')
    .description('where a backfill stands: rows done, percent of the key range, rate, time left; paused or blocked, and why')
    .requiredOption('--env <name>', 'the environment')
    .option('--json', 'print as JSON')
    .addHelpText('after', '\nExample:\n  dbchange backfill status backfill_ci_runners --env production --json\n\nExit codes: 0 running or finished, 1 cancelled or aborted, 2 blocked for a person.')
    .action(async (name: string, options: { env: string; json?: boolean }) => {
      const status = await readBackfillStatus(await context.client(), options.env, name);
      print(status, options.json);
      process.exitCode = exitCodeFor(status);
    });

  for (const kind of ['pause', 'resume', 'cancel'] as const) registerControl(backfill, context, kind);
}

const CONTROL_TEXT: Record<BackfillControlKind, string> = {
  pause: 'pause a backfill after its running batch, until someone resumes it',
  resume: 'resume a backfill a person paused',
  cancel: 'end a backfill after its running batch; what it did stays done (the ledger says which keys)',
};

function registerControl(backfill: Command, context: CommandContext, kind: BackfillControlKind): void {
  const command = backfill
    .command(`${kind} <name>`)
    .description(CONTROL_TEXT[kind])
    .requiredOption('--env <name>', 'the environment')
    .requiredOption('--as <user>', 'who decides (must be listed under approvers in dbchange.yaml)')
    .option('--comment <text>', 'recorded with the decision')
    .option('--json', 'print the answer as JSON');
  withSigningOptions(command)
    .addHelpText(
      'after',
      `\nExample:\n  dbchange backfill ${kind} backfill_ci_runners --env production --as alice --comment "replica lag alert"\n${SIGNING_HELP}\n\n` +
        'Exit codes: 0 accepted, 3 refused (the reason is printed and recorded in the workflow).',
    )
    .action(async (name: string, options: { env: string; as: string; comment?: string; json?: boolean } & SigningOptions) => {
      const client = await context.client();
      const signed = await signedPart(client, backfillWorkflowId(options.env, name), { decision: kind, user: options.as }, options);
      if (signed === 'printed') return;
      const answer = await controlBackfill(client, options.env, name, kind, { user: options.as, ...(options.comment ? { comment: options.comment } : {}), ...signed });
      if (options.json) printJson('decision', { name, environment: options.env, decision: kind, ...answer });
      else process.stdout.write(`${answer.accepted ? 'accepted' : 'refused'}: ${answer.reason}\n`);
      if (!answer.accepted) process.exitCode = EXIT.refused;
    });
}

async function follow(read: () => Promise<BackfillStatus>): Promise<BackfillStatus> {
  const line = createLiveLine();
  for (;;) {
    const status = await read();
    line.update(describeBackfillStatus(status).join(' · '));
    if (isBackfillOver(status) || status.state === 'blocked') {
      line.done();
      return status;
    }
    await new Promise((resolve) => setTimeout(resolve, FOLLOW_EVERY_MS));
  }
}

function exitCodeFor(status: BackfillStatus): number {
  if (status.state === 'blocked') return EXIT.needsHuman;
  if (status.state === 'cancelled' || status.state === 'aborted') return EXIT.failure;
  return EXIT.ok;
}

function print(status: BackfillStatus, json?: boolean): void {
  if (json) printJson('backfill-status', { status });
  else process.stdout.write(`${[`${status.workflowId}: ${status.summary}`, ...describeBackfillStatus(status)].join('\n')}\n`);
}
