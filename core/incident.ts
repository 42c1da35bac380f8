// Incidents: an `incident` workflow stays open while one is active; production checks read it.
export const INCIDENT_WORKFLOW_TYPE = 'incident';

export interface IncidentInput {
  id: string;
  severity: number;
  title: string;
  openedBy: string;
}

export interface IncidentClose {
  user: string;
  comment?: string;
}

export function incidentWorkflowId(id: string): string {
  return `incident-${id}`;
}

/** Severity 1 and 2 incidents hold every change. */
export const BLOCKING_SEVERITY = 2;
