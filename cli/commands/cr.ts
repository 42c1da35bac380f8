// cr validate|execute|rollback|status: change requests, from a reviewed YAML file to a durable workflow.
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ChangeRequestError } from '../../core/change-request';
import { readChangeRequestFile } from '../../core/change-request-file';
import type { ChangeRequestStatus } from '../../core/change-status';
import { requiredApprovals } from '../../core/change-steps';
import { ConfigError, type DbChangeConfig } from '../../core/config';
import { checkChangeTargets } from '../../core/change-targets';
import { changeRequestStatus, changeWorkflowIdOf, firstChangeStatus, isChangeSettled, requestRollback, rollbackAsNewChange, startChangeRequest } from '../change-client';
import { changeStatusLines, planLines } from '../change-text';
import type { CommandContext } from '../context';
import { SIGNING_HELP, signedPart, withSigningOptions, type SigningOptions } from '../decision-signing';
import { followChange } from '../follow';
import { EXIT, printJson, progress } from '../output';

export function registerChangeRequestCommands(program: Command, context: CommandContext): void {
  const cr = program
    .command('cr')
    .description('change requests: reviewed SQL steps with a rollback plan, run as a durable workflow')
    .addHelpText('after', '\nExample:\n  dbchange cr validate examples/change-requests/000-drop-premature-fk.yaml\n\nCommands: validate, execute [--dry-run], rollback, status. See README "Change requests" for the file format.');

  cr.command('validate <file>')
    .description('check a change request file and print its plan, checksum and the approvals it needs')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  dbchange cr validate examples/change-requests/000-drop-premature-fk.yaml\n\nExit codes: 0 valid, 3 invalid (every problem is printed as FILE:LINE: field: problem).')
    .action(async (file: string, options: { json?: boolean }) => {
      const checked = await readChecked(file, options.json);
      if (!checked) return;
      const config = configIfPresent(context);
      // With the project's config at hand, the environments and each step's database must exist, and the approvals are known.
      if (config) checkChangeTargets(config, file, checked.changeRequest);
      const approvals = config && requiredApprovals(checked.changeRequest.criticality, config.changeRequests.approvals);
      if (options.json) printJson('cr-validation', { valid: true, file, checksum: checked.checksum, approvals, changeRequest: checked.changeRequest });
      else process.stdout.write(`${planLines(file, checked.changeRequest, checked.checksum, approvals).join('\n')}\n`);
    });

  cr.command('execute <file>')
    .description('start the change request (workflow cr-<id>): approvals, then each environment in order')
    .option('--dry-run', 'rehearse every step and the rollback in transactions that are rolled back; report durations and locks')
    .option('--follow', 'stay and show progress until the change is complete, rolled back or ended')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  dbchange cr execute examples/change-requests/000-drop-premature-fk.yaml --dry-run',
        '  dbchange cr execute examples/change-requests/000-drop-premature-fk.yaml --follow',
        '',
        'A dry run needs no approval and always waits for its report. Approvals name the checksum that',
        '`dbchange cr validate` prints: what runs is exactly what was approved.',
        '',
        'Exit codes: 0 started (with --follow or --dry-run: complete), 1 failed, 2 waiting for a person, 3 refused (invalid file, already running).',
      ].join('\n'),
    )
    .action(async (file: string, options: { dryRun?: boolean; follow?: boolean; json?: boolean }) => {
      const checked = await readChecked(file, options.json);
      if (!checked) return;
      const client = await context.client();
      const handle = await startChangeRequest(client, context.config(), checked, { dryRun: options.dryRun, taskQueue: context.taskQueue });
      progress(`started ${handle.workflowId} (checksum ${checked.checksum.slice(0, 12)}); see it in the Temporal UI or with \`dbchange cr status ${handle.workflowId}\``);
      if (!options.follow && !options.dryRun) {
        const snapshot = await firstChangeStatus(client, handle.workflowId);
        if (options.json) printJson('cr-started', { workflowId: handle.workflowId, checksum: checked.checksum, status: snapshot });
        else if (snapshot?.waitingFor) process.stdout.write(`${handle.workflowId}: ${snapshot.waitingFor}\n`);
        return;
      }
      const final = options.dryRun ? await handle.result() : await followChange(client, handle.workflowId);
      printStatus(handle.workflowId, final, options.json);
      process.exitCode = exitCodeFor(final);
    });

  const rollback = cr
    .command('rollback <change-id>')
    .description('roll a change back: runs its rollback steps on every environment it changed, newest first')
    .requiredOption('--as <user>', 'who asks for the rollback (an approver in dbchange.yaml, or the requester)')
    .requiredOption('--reason <text>', 'why, recorded in the workflow and in notifications')
    .option('--write-cr <file>', 'after the rollback window has closed: write the rollback steps as a new change request file')
    .option('--json', 'print the answer as JSON');
  withSigningOptions(rollback)
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  dbchange cr rollback drop-premature-fk-3f92913d27 --as alice --reason "runner registrations fail again"',
        '  dbchange cr rollback cr-drop-premature-fk-3f92913d27 --as alice --reason "window closed" --write-cr rollback.yaml',
        '',
        'Accepted while the change is complete and its rollback window (changeRequests.rollbackWindow, default 24h)',
        'is open, or while it is blocked. Exit codes: 0 accepted, 3 refused (the reason says what to do instead).',
        SIGNING_HELP,
      ].join('\n'),
    )
    .action(async (changeId: string, options: { as: string; reason: string; writeCr?: string; json?: boolean } & SigningOptions) => {
      const client = await context.client();
      const workflowId = changeWorkflowIdOf(changeId);
      if (options.writeCr) {
        writeFileSync(options.writeCr, await rollbackAsNewChange(client, workflowId, options.as, options.reason));
        progress(`wrote ${options.writeCr}: review it, then \`dbchange cr validate ${options.writeCr}\` and \`dbchange cr execute ${options.writeCr}\``);
        return;
      }
      const signed = await signedPart(client, workflowId, { decision: 'rollback', user: options.as }, options);
      if (signed === 'printed') return;
      const answer = await requestRollback(client, workflowId, { user: options.as, reason: options.reason, ...signed });
      if (options.json) printJson('decision', { workflowId, decision: 'rollback', ...answer });
      else process.stdout.write(`${answer.accepted ? 'accepted' : 'refused'}: ${answer.reason}\n`);
      if (!answer.accepted) process.exitCode = EXIT.refused;
    });

  cr.command('status <change-id>')
    .description('where a change request stands: stage, each step on each environment, approvals and decisions')
    .option('--json', 'print as JSON')
    .addHelpText('after', '\nExamples:\n  dbchange cr status drop-premature-fk-3f92913d27\n  dbchange cr status cr-drop-premature-fk-3f92913d27 --json\n\nExit codes: 0 running or done, 1 failed or rejected, 2 waiting for a person (approval or a blocked step).')
    .action(async (changeId: string, options: { json?: boolean }) => {
      const workflowId = changeWorkflowIdOf(changeId);
      const snapshot = await changeRequestStatus(await context.client(), workflowId);
      printStatus(workflowId, snapshot, options.json);
      process.exitCode = exitCodeFor(snapshot);
    });

}

/** Reads and checks a CR file; an invalid one prints every problem as FILE:LINE: ... and exits 3. */
async function readChecked(file: string, json?: boolean) {
  try {
    return await readChangeRequestFile(file);
  } catch (error) {
    if (!(error instanceof ChangeRequestError)) throw error;
    const problems = error.problems.map((problem) => problem.replace(/^line (\d+): /, `${file}:$1: `));
    if (json) printJson('cr-validation', { valid: false, file, problems });
    else for (const problem of problems) process.stderr.write(`${problem.startsWith(file) ? problem : `${file}: ${problem}`}\n`);
    process.exitCode = EXIT.refused;
    return undefined;
  }
}

/** The project's config, or undefined when there is none here (validating a CR needs no project). */
function configIfPresent(context: CommandContext): DbChangeConfig | undefined {
  try {
    return context.config();
  } catch (error) {
    if (error instanceof ConfigError && error.problems.some((problem) => problem.startsWith('file not found'))) return undefined;
    throw error;
  }
}

function exitCodeFor(snapshot: ChangeRequestStatus): number {
  if (snapshot.stage === 'blocked' || snapshot.stage === 'waiting-approval') return EXIT.needsHuman;
  if (snapshot.stage === 'failed' || snapshot.stage === 'rejected') return EXIT.failure;
  return EXIT.ok;
}

function printStatus(workflowId: string, snapshot: ChangeRequestStatus, json?: boolean): void {
  if (json) printJson('cr-status', { workflowId, settled: isChangeSettled(snapshot), status: snapshot });
  else process.stdout.write(`${changeStatusLines(workflowId, snapshot).join('\n')}\n`);
}
