// Production checks before each environment: incidents, running critical changes, change locks.
import type { Client } from '@temporalio/client';
import { activeChangeLock } from '../core/change-lock';
import { CHANGE_REQUEST_WORKFLOW_TYPE } from '../core/change-status';
import { HOLDING_CRITICALITIES } from '../core/criticality';
import type { ChangeLockWindow } from '../core/config';
import { BLOCKING_SEVERITY, INCIDENT_WORKFLOW_TYPE } from '../core/incident';
import { SEVERITY } from '../core/search-attributes';

export interface ProductionCheckResult {
  ok: boolean;
  /** Each reason the environment may not be changed now, worded for the status line. */
  reasons: string[];
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
  for (const change of changes) {
    if (change.workflowId !== selfWorkflowId) reasons.push(`running critical change ${change.workflowId} on ${environment}`);
  }
  const lock = activeChangeLock(changeLocks, new Date());
  if (lock) reasons.push(`change lock until ${lock.end}: ${lock.reason}`);
  return { ok: reasons.length === 0, reasons };
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}
