// Client-side operations on backfill workflows, shared by the CLI, the demo and the tests.
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/common';
import { BACKFILL_WORKFLOW_TYPE, backfillWorkflowId, FINAL_BACKFILL_STATES } from '../core/backfill';
import { backfillDatabase, readBackfill } from '../core/backfill-file';
import type { BackfillInput, BackfillStatus } from '../core/backfill-status';
import { ConfigError, selectEnvironments, type DbChangeConfig } from '../core/config';
import type { BackfillControl } from '../core/decisions';
import { backfillStatus, cancelBackfill, pauseBackfill, resumeBackfill, type DecisionAnswer } from '../workflows/messages';
import type { backfill } from '../workflows/backfill';
import { CliError, EXIT } from './output';

export type BackfillControlKind = 'pause' | 'resume' | 'cancel';

/** Starts `backfill-<environment>-<name>` after checking the file here; refuses while one runs. */
export async function startBackfill(client: Client, config: DbChangeConfig, options: { name: string; environment: string; requestedBy: string; taskQueue: string }): Promise<string> {
  if (!config.migrations.backfills) throw new ConfigError(config.path, ['migrations.backfills: name the folder of backfill files, e.g. backfills: db/backfills']);
  const file = readBackfill(config.migrations.backfills, options.name);
  const [environment] = selectEnvironments(config, [options.environment]);
  // Checked here too, so a backfill that has no database there is refused before it starts.
  backfillDatabase(config, environment.name, file);
  const workflowId = backfillWorkflowId(environment.name, file.name);
  const input: BackfillInput = { environment: environment.name, name: file.name, requestedBy: options.requestedBy };
  try {
    await client.workflow.start<typeof backfill>(BACKFILL_WORKFLOW_TYPE, {
      workflowId,
      taskQueue: options.taskQueue,
      args: [input],
      staticSummary: `backfill ${file.name} on ${environment.name}: ${file.table}`,
      staticDetails: [`**requested by** ${options.requestedBy}`, `**file** ${file.fileName}`, `**table** ${file.table} by ${file.key}`].join('\n\n'),
    });
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) {
      throw new CliError(`backfill ${workflowId} is already running; see it with \`dbchange backfill status ${file.name} --env ${environment.name}\``, EXIT.refused);
    }
    throw error;
  }
  return workflowId;
}

export async function readBackfillStatus(client: Client, environment: string, name: string): Promise<BackfillStatus> {
  const workflowId = backfillWorkflowId(environment, name);
  try {
    return await client.workflow.getHandle(workflowId).query(backfillStatus);
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) throw notStarted(environment, name);
    throw error;
  }
}

/** pause, resume or cancel, as an update: accepted or refused (and why) at once, and recorded in the workflow. */
export async function controlBackfill(client: Client, environment: string, name: string, kind: BackfillControlKind, control: BackfillControl): Promise<DecisionAnswer> {
  const workflowId = backfillWorkflowId(environment, name);
  const definition = kind === 'pause' ? pauseBackfill : kind === 'resume' ? resumeBackfill : cancelBackfill;
  // An ended workflow takes no update: say so, rather than the server's error.
  const now = await readBackfillStatus(client, environment, name);
  if (isBackfillOver(now)) throw new CliError(`${kind} refused: ${workflowId} already ended (${now.state}: ${now.summary})`, EXIT.refused);
  try {
    return await client.workflow.getHandle(workflowId).executeUpdate(definition, { args: [control] });
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) throw notStarted(environment, name);
    if (error instanceof WorkflowUpdateFailedError) throw new CliError(`${kind} refused by ${workflowId}: ${error.cause?.message ?? error.message}`, EXIT.refused);
    throw error;
  }
}

export function isBackfillOver(status: BackfillStatus): boolean {
  return FINAL_BACKFILL_STATES.includes(status.state);
}

function notStarted(environment: string, name: string): CliError {
  return new CliError(`no backfill ${backfillWorkflowId(environment, name)}; start it with \`dbchange backfill start ${name} --env ${environment}\``, EXIT.failure);
}
