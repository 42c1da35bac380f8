// pdm execute|status: start the post-deploy migration pipeline, and see where pipelines stand.
import type { Command } from 'commander';
import { selectEnvironments } from '../../core/config';
import type { PipelineStatus } from '../../core/pipeline';
import type { CommandContext } from '../context';
import { currentUser } from '../context';
import { followPipeline } from '../follow';
import { snapshotLines } from '../snapshot-text';
import { EXIT, printJson, progress } from '../output';
import { listPipelines, pipelineStatus, startPipeline } from '../pipeline-client';
import { checkPipelineStart } from '../start-check';

export function registerPdmCommands(program: Command, context: CommandContext): void {
  const pdm = program
    .command('pdm')
    .description('the post-deploy migration pipeline: staging → QA → approval → production')
    .addHelpText('after', '\nExamples:\n  dbchange pdm execute --package 16.6.202401151200 --follow\n  dbchange pdm status');

  pdm
    .command('execute')
    .description('start the pipeline over the configured environments (one pipeline per set of environments)')
    .option('--env <names...>', 'only these environments, in config order (default: all)')
    .option('--package <version>', 'the deployed package version, for the record')
    .option('--as <user>', 'who requests it (default: $DBCHANGE_USER or $USER); they cannot approve it')
    .option('--follow', 'stay and show progress until the pipeline ends')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  dbchange pdm execute --package 16.6.202401151200 --follow\n  dbchange pdm execute --env staging\n\nExit codes: 0 started (or, with --follow, complete), 1 failed/aborted/rejected, 3 refused (already running; or an edited file, a file that differs from what an earlier environment ran, or an out-of-order version under migrations.outOfOrder: refuse).',
    )
    .action(async (options: { env?: string[]; package?: string; as?: string; follow?: boolean; json?: boolean }) => {
      const config = context.config();
      await checkPipelineStart(config, selectEnvironments(config, options.env).map((environment) => environment.name));
      const client = await context.client();
      const handle = await startPipeline(client, config, {
        environments: options.env,
        packageVersion: options.package,
        requestedBy: currentUser(options.as),
        taskQueue: context.taskQueue,
      });
      progress(`started ${handle.workflowId}; watch it in the Temporal UI or with \`dbchange pdm status ${handle.workflowId}\``);
      if (!options.follow) {
        if (options.json) printJson('pdm-started', { workflowId: handle.workflowId, runId: handle.firstExecutionRunId });
        return;
      }
      const final = await followPipeline(client, handle.workflowId);
      printSnapshot(handle.workflowId, final, options.json);
      process.exitCode = exitCodeFor(final);
    });

  pdm
    .command('status [workflow-id]')
    .description('show one pipeline in detail, or list running and recent pipelines')
    .option('--json', 'print as JSON')
    .addHelpText('after', '\nExamples:\n  dbchange pdm status\n  dbchange pdm status pdm-staging+production --json\n\nExit codes: 0 running or done, 1 failed, 2 waiting for a person (approval or a blocked step).')
    .action(async (workflowId: string | undefined, options: { json?: boolean }) => {
      const client = await context.client();
      if (!workflowId) {
        const pipelines = await listPipelines(client);
        if (options.json) printJson('pdm-list', { pipelines });
        else if (pipelines.length === 0) process.stdout.write('no pipelines yet; start one with `dbchange pdm execute`\n');
        else {
          for (const item of pipelines) {
            process.stdout.write(`${item.workflowId.padEnd(32)} ${item.status.padEnd(17)} ${item.startTime.toISOString()}${item.waitingFor ? `  ${item.waitingFor}` : ''}\n`);
          }
        }
        return;
      }
      const snapshot = await pipelineStatus(client, workflowId);
      printSnapshot(workflowId, snapshot, options.json);
      process.exitCode = exitCodeFor(snapshot);
    });
}

function exitCodeFor(snapshot: PipelineStatus): number {
  if (snapshot.stage === 'blocked' || snapshot.stage === 'waiting-approval') return EXIT.needsHuman;
  if (snapshot.stage === 'failed' || snapshot.stage === 'aborted' || snapshot.stage === 'rejected') return EXIT.failure;
  return EXIT.ok;
}

function printSnapshot(workflowId: string, snapshot: PipelineStatus, json?: boolean): void {
  if (json) printJson('pdm-status', { workflowId, status: snapshot });
  else process.stdout.write(`${snapshotLines(workflowId, snapshot).join('\n')}\n`);
}
