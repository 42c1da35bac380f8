// Client-side operations on change requests, shared by the CLI, the demo and the tests.
import { WorkflowUpdateFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/common';
import { parseDocument, stringify } from 'yaml';
import type { ChangeRequestFile } from '../core/change-request-file';
import { CHANGE_REQUEST_WORKFLOW_TYPE, changeWorkflowId, FINAL_CHANGE_STAGES, type ChangeRequestInput, type ChangeRequestStatus } from '../core/change-status';
import { requiredApprovals } from '../core/change-steps';
import type { DbChangeConfig } from '../core/config';
import { checkChangeTargets } from '../core/change-targets';
import type { RollbackRequest } from '../core/decisions';
import { changeStatus, rollbackUpdate, type DecisionAnswer } from '../workflows/messages';
import type { changeRequest } from '../workflows/change-request';
import { CliError, EXIT } from './output';

/** Accepts `drop-fk-42` or `cr-drop-fk-42`. */
export function changeWorkflowIdOf(idOrWorkflowId: string): string {
  return idOrWorkflowId.startsWith('cr-') ? idOrWorkflowId : changeWorkflowId(idOrWorkflowId);
}

/** Starts `cr-<id>` (or `cr-<id>-dry-run`); refuses, naming it, if that change is already running. */
export async function startChangeRequest(client: Client, config: DbChangeConfig, file: ChangeRequestFile, options: { dryRun?: boolean; taskQueue: string }): Promise<WorkflowHandle<typeof changeRequest>> {
  const cr = file.changeRequest;
  checkChangeTargets(config, file.file, cr);
  const workflowId = changeWorkflowId(cr.id, options.dryRun);
  const input: ChangeRequestInput = { file: file.file, content: file.content, checksum: file.checksum, dryRun: options.dryRun || undefined };
  const approvals = requiredApprovals(cr.criticality, config.changeRequests.approvals);
  try {
    return await client.workflow.start<typeof changeRequest>(CHANGE_REQUEST_WORKFLOW_TYPE, {
      workflowId,
      taskQueue: options.taskQueue,
      args: [input],
      staticSummary: `${options.dryRun ? 'dry run: ' : ''}${cr.criticality} ${cr.title} (${cr.environments.join(' → ')})`,
      staticDetails: [
        `**change** ${cr.id} · **requested by** ${cr.requestedBy}`,
        `**checksum** ${file.checksum}`,
        `**approvals** ${options.dryRun ? 'none (dry run)' : approvals.join(' and ') || 'none'}`,
        `**steps** ${cr.steps.map((step) => `${step.kind} ${step.id}`).join(', ')}`,
        `**rollback** ${cr.rollback.map((step) => `${step.kind} ${step.id}`).join(', ') || 'none'}`,
      ].join('\n\n'),
    });
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) {
      throw new CliError(`change ${workflowId} is already running; see it with \`dbchange cr status ${cr.id}\``, EXIT.refused);
    }
    throw error;
  }
}

export async function changeRequestStatus(client: Client, workflowId: string): Promise<ChangeRequestStatus> {
  try {
    return await client.workflow.getHandle(workflowId).query(changeStatus);
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) throw noSuchChange(workflowId);
    throw error;
  }
}

/** The status once the change has planned itself (it answers queries from its first step on), or undefined after `timeoutMs`. */
export async function firstChangeStatus(client: Client, workflowId: string, timeoutMs = 10_000): Promise<ChangeRequestStatus | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const snapshot = await client.workflow.getHandle(workflowId).query(changeStatus).catch(() => undefined);
    if ((snapshot && snapshot.stage !== 'scheduled') || Date.now() > deadline) return snapshot;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Nothing more happens without a person: ended, or complete with only its rollback window open. */
export function isChangeSettled(snapshot: ChangeRequestStatus): boolean {
  return FINAL_CHANGE_STAGES.includes(snapshot.stage) || snapshot.stage === 'complete';
}

/** Asks a change in its rollback window (or blocked) to roll back; a closed window gets the way forward. */
export async function requestRollback(client: Client, workflowId: string, request: RollbackRequest): Promise<DecisionAnswer> {
  const handle = client.workflow.getHandle(workflowId);
  const description = await handle.describe().catch((error: unknown) => {
    throw error instanceof WorkflowNotFoundError ? noSuchChange(workflowId) : error;
  });
  if (description.status.name !== 'RUNNING') {
    const snapshot = await handle.query(changeStatus).catch(() => undefined);
    const state = snapshot ? `${snapshot.stage}${snapshot.summary ? `: ${snapshot.summary}` : ''}` : description.status.name.toLowerCase();
    if (snapshot?.stage === 'rolled-back') throw new CliError(`${workflowId} is already rolled back (${snapshot.summary ?? 'rolled back'}); nothing to do`, EXIT.refused);
    throw new CliError(
      `${workflowId} has ended (${state}), so its rollback window is closed. Run its rollback steps as a new change request: ` +
        `\`dbchange cr rollback ${workflowId} --as ${request.user} --reason "..." --write-cr rollback.yaml\`, review it, then \`dbchange cr execute rollback.yaml\``,
      EXIT.refused,
    );
  }
  try {
    return await handle.executeUpdate(rollbackUpdate, { args: [request] });
  } catch (error) {
    if (error instanceof WorkflowUpdateFailedError) throw new CliError(`rollback refused by ${workflowId}: ${error.cause?.message ?? error.message}`, EXIT.refused);
    throw error;
  }
}

/**
 * A new CR whose steps are an earlier change's rollback steps, taken from that change's history (the text that
 * was approved), for when its rollback window has closed. Environments are reversed: the newest change first.
 */
export async function rollbackAsNewChange(client: Client, workflowId: string, requestedBy: string, reason: string): Promise<string> {
  const input = await startInput(client, workflowId);
  const original = parseDocument(input.content).toJS() as { id: string; title: string; criticality: string; environments: string[]; rollback?: unknown[]; lockRetry?: unknown };
  if (!original.rollback || original.rollback.length === 0) throw new CliError(`${workflowId} has no rollback steps to turn into a change request`, EXIT.refused);
  const header = `# Rollback of ${original.id} (${workflowId}, checksum ${input.checksum.slice(0, 12)}), written by dbchange cr rollback.\n# Reason: ${reason.replace(/\n/g, ' ')}\n`;
  return (
    header +
    stringify({
      id: `${original.id}-rollback`,
      title: `Roll back: ${original.title}`,
      criticality: original.criticality,
      requestedBy,
      environments: [...original.environments].reverse(),
      ...(original.lockRetry ? { lockRetry: original.lockRetry } : {}),
      steps: original.rollback,
    })
  );
}

async function startInput(client: Client, workflowId: string): Promise<ChangeRequestInput> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory().catch((error: unknown) => {
    throw error instanceof WorkflowNotFoundError ? noSuchChange(workflowId) : error;
  });
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (!payload) throw new CliError(`${workflowId} has no recorded input`, EXIT.failure);
  return defaultPayloadConverter.fromPayload<ChangeRequestInput>(payload);
}

function noSuchChange(workflowId: string): CliError {
  return new CliError(`no change request ${workflowId}; list them in the Temporal UI with DbChangeKind = "cr"`, EXIT.failure);
}
