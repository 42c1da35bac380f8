// Production checks before each environment: incidents, running critical changes, change locks.
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import { activeChangeLock } from '../core/change-lock';
import { CHANGE_REQUEST_WORKFLOW_TYPE } from '../core/change-status';
import { HOLDING_CRITICALITIES } from '../core/criticality';
import type { ChangeLockWindow } from '../core/config';
import { BLOCKING_SEVERITY, INCIDENT_WORKFLOW_TYPE } from '../core/incident';
import { SEVERITY, STATUS } from '../core/search-attributes';

export interface ProductionCheckResult {
  ok: boolean;
  /** Each reason the environment may not be changed now, worded for the status line. */
  reasons: string[];
  /** The incidents and critical changes that hold it: a wait re-checks the moment one of them lets go. */
  holders: string[];
  /** The end of the change lock in force, if any: a wait re-checks then. */
  lockEndsAt?: string;
}

export async function runProductionChecks(
  client: Client,
  environment: string,
  changeLocks: ChangeLockWindow[],
  selfWorkflowId: string,
): Promise<ProductionCheckResult> {
  // The two visibility queries are independent: asked together, the check costs one round trip, not two.
  const [incidents, changes] = await Promise.all([
    collect(client.workflow.list({
      query: `WorkflowType = '${INCIDENT_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' AND DbChangeSeverity <= ${BLOCKING_SEVERITY}`,
    })),
    collect(client.workflow.list({
      // A change in its rollback window is complete; only one that is changing the environment (or stuck doing so) holds.
      query: `WorkflowType = '${CHANGE_REQUEST_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' AND DbChangeKind = 'cr' AND DbChangeCriticality IN (${HOLDING_CRITICALITIES.map((level) => `'${level}'`).join(', ')}) AND DbChangeEnvironment = '${environment}' AND DbChangeStatus IN ('in-progress', 'blocked')`,
    })),
  ]);
  const reasons = incidents.map((incident) => `active severity ${incident.typedSearchAttributes.get(SEVERITY) ?? '?'} incident ${incident.workflowId}`);
  const holders = incidents.map((incident) => incident.workflowId);
  for (const change of changes) {
    if (change.workflowId === selfWorkflowId) continue;
    reasons.push(`running critical change ${change.workflowId} on ${environment}`);
    holders.push(change.workflowId);
  }
  const lock = activeChangeLock(changeLocks, new Date());
  if (lock) reasons.push(`change lock until ${lock.end}: ${lock.reason}`);
  return { ok: reasons.length === 0, reasons, holders, ...(lock ? { lockEndsAt: lock.end } : {}) };
}

/** True once a holder no longer holds: an incident closed, a critical change no longer changing (or gone). */
export async function holderReleased(client: Client, workflowId: string): Promise<boolean> {
  try {
    const description = await client.workflow.getHandle(workflowId).describe();
    if (description.status.name !== 'RUNNING') return true;
    const status = description.typedSearchAttributes.get(STATUS);
    return description.type === CHANGE_REQUEST_WORKFLOW_TYPE && status !== 'in-progress' && status !== 'blocked';
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return true;
    throw error;
  }
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}
