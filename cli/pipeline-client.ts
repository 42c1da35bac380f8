// Client-side operations on dbchange workflows, shared by the CLI, the demo and the tests.
import { WorkflowUpdateFailedError, type Client, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/common';
import { selectEnvironments, type DbChangeConfig } from '../core/config';
import type { Approval, Rejection, Resolution } from '../core/decisions';
import { incidentWorkflowId, INCIDENT_WORKFLOW_TYPE, type IncidentInput } from '../core/incident';
import { FINAL_STAGES, PIPELINE_WORKFLOW_TYPE, pipelineWorkflowId, type PipelineInput, type PipelineStatus } from '../core/pipeline';
import { approveUpdate, closeIncident, rejectUpdate, resolveUpdate, status, type DecisionAnswer } from '../workflows/messages';
import type { postDeployMigrationPipeline } from '../workflows/pipeline';
import { STATUS } from '../core/search-attributes';
import { CliError, EXIT } from './output';

export interface StartPipelineOptions {
  environments?: string[];
  packageVersion?: string;
  requestedBy: string;
  taskQueue: string;
}

/** Starts the pipeline for a set of environments; refuses, naming the running one, if it is already running. */
export async function startPipeline(client: Client, config: DbChangeConfig, options: StartPipelineOptions): Promise<WorkflowHandleWithFirstExecutionRunId<typeof postDeployMigrationPipeline>> {
  const environments = selectEnvironments(config, options.environments).map((environment) => environment.name);
  const workflowId = pipelineWorkflowId(environments);
  const input: PipelineInput = { environments, packageVersion: options.packageVersion, requestedBy: options.requestedBy };
  try {
    return await client.workflow.start<typeof postDeployMigrationPipeline>(PIPELINE_WORKFLOW_TYPE, {
      workflowId,
      taskQueue: options.taskQueue,
      args: [input],
      staticSummary: `post-deploy migrations${options.packageVersion ? ` for ${options.packageVersion}` : ''}: ${environments.join(' → ')}`,
      staticDetails: [
        `**requested by** ${options.requestedBy}`,
        `**environments** ${environments.join(', ')}`,
        options.packageVersion ? `**package** ${options.packageVersion}` : '',
        `**approvals** ${config.environments.filter((environment) => environment.approval && environments.includes(environment.name)).map((environment) => `${environment.name}: ${environment.approval!.roles.join(' or ')}`).join('; ') || 'none'}`,
      ].filter(Boolean).join('\n\n'),
    });
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) {
      throw new CliError(
        `pipeline ${workflowId} is already running; follow it with \`dbchange pdm status ${workflowId}\``,
        EXIT.refused,
      );
    }
    throw error;
  }
}

export type DecisionKind = 'approve' | 'reject' | 'resolve';

/** Sends a decision as an update, so the answer (accepted or refused, and why) comes back at once. */
export async function sendDecision(client: Client, workflowId: string, kind: 'approve', payload: Approval): Promise<DecisionAnswer>;
export async function sendDecision(client: Client, workflowId: string, kind: 'reject', payload: Rejection): Promise<DecisionAnswer>;
export async function sendDecision(client: Client, workflowId: string, kind: 'resolve', payload: Resolution): Promise<DecisionAnswer>;
export async function sendDecision(client: Client, workflowId: string, kind: DecisionKind, payload: Approval | Rejection | Resolution): Promise<DecisionAnswer> {
  const handle = client.workflow.getHandle(workflowId);
  try {
    if (kind === 'approve') return await handle.executeUpdate(approveUpdate, { args: [payload as Approval] });
    if (kind === 'reject') return await handle.executeUpdate(rejectUpdate, { args: [payload as Rejection] });
    return await handle.executeUpdate(resolveUpdate, { args: [payload as Resolution] });
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) throw notFound(workflowId);
    if (error instanceof WorkflowUpdateFailedError) {
      throw new CliError(`${kind} refused by ${workflowId}: ${error.cause?.message ?? error.message}`, EXIT.refused);
    }
    throw error;
  }
}

export async function pipelineStatus(client: Client, workflowId: string): Promise<PipelineStatus> {
  try {
    return await client.workflow.getHandle(workflowId).query(status);
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) throw notFound(workflowId);
    throw error;
  }
}

export function isFinal(snapshot: PipelineStatus): boolean {
  return FINAL_STAGES.includes(snapshot.stage);
}

export interface PipelineListing {
  workflowId: string;
  runId: string;
  status: string;
  startTime: Date;
  closeTime?: Date;
  waitingFor?: string;
}

/** Running pipelines first, then the most recently closed; each with its stage and, while running, what it waits for. */
export async function listPipelines(client: Client, limit = 20): Promise<PipelineListing[]> {
  const listings: PipelineListing[] = [];
  // A run that continued as new is part of its pipeline's latest run, not a pipeline of its own.
  for await (const execution of client.workflow.list({ query: `WorkflowType = '${PIPELINE_WORKFLOW_TYPE}' AND ExecutionStatus != 'ContinuedAsNew'`, pageSize: limit })) {
    listings.push({
      workflowId: execution.workflowId,
      runId: execution.runId,
      status: listingStatus(execution.typedSearchAttributes.get(STATUS), execution.status.name),
      startTime: execution.startTime,
      closeTime: execution.closeTime,
    });
    if (listings.length >= limit) break;
  }
  // Visibility sorts by start time only; a pipeline still waiting matters more than one that finished.
  listings.sort((a, b) => Number(Boolean(a.closeTime)) - Number(Boolean(b.closeTime)) || b.startTime.getTime() - a.startTime.getTime());
  await Promise.all(
    listings
      .filter((listing) => !listing.closeTime)
      .map(async (listing) => {
        // A pipeline whose worker is down cannot answer; the list must not wait for it.
        const snapshot = await withTimeout(client.workflow.getHandle(listing.workflowId, listing.runId).query(status), LISTING_QUERY_TIMEOUT_MS).catch(() => undefined);
        listing.waitingFor = snapshot ? snapshot.waitingFor : `no worker answered the status query within ${LISTING_QUERY_TIMEOUT_MS / 1000}s`;
      }),
  );
  return listings;
}

const LISTING_QUERY_TIMEOUT_MS = 3_000;

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The pipeline's own stage (the DbChangeStatus search attribute), unless the run was ended from outside
 * (terminated, timed out, cancelled) while its stage still said it was going on.
 */
export function listingStatus(stage: string | undefined, executionStatus: string): string {
  const endedFromOutside = !['RUNNING', 'COMPLETED', 'FAILED', 'CONTINUED_AS_NEW'].includes(executionStatus);
  if (!stage || (endedFromOutside && !(FINAL_STAGES as readonly string[]).includes(stage))) return executionStatus.toLowerCase().replace(/_/g, '-');
  return stage;
}

export async function openIncident(client: Client, input: IncidentInput, taskQueue: string): Promise<string> {
  const workflowId = incidentWorkflowId(input.id);
  try {
    await client.workflow.start(INCIDENT_WORKFLOW_TYPE, {
      workflowId,
      taskQueue,
      args: [input],
      staticSummary: `severity ${input.severity} incident: ${input.title}`,
    });
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) throw new CliError(`incident ${workflowId} is already open`, EXIT.refused);
    throw error;
  }
  return workflowId;
}

export async function closeIncidentById(client: Client, id: string, user: string, comment?: string): Promise<string> {
  const workflowId = id.startsWith('incident-') ? id : incidentWorkflowId(id);
  try {
    await client.workflow.getHandle(workflowId).signal(closeIncident, { user, comment });
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) throw new CliError(`no open incident ${workflowId}; list them in the UI with DbChangeKind="incident"`, EXIT.failure);
    throw error;
  }
  return workflowId;
}

function notFound(workflowId: string): CliError {
  return new CliError(`no workflow ${workflowId}; list pipelines with \`dbchange pdm status\``, EXIT.failure);
}
