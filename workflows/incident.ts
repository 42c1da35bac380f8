// incident: open while an incident is active, so production checks can see it.
import { ApplicationFailure, condition, setHandler, upsertSearchAttributes, setCurrentDetails } from '@temporalio/workflow';
import type { IncidentClose, IncidentInput } from '../core/incident';
import { KIND, SEVERITY, STATUS } from '../core/search-attributes';
import { closeIncident, incidentStatus } from './messages';

export async function incident(input: IncidentInput): Promise<{ closedBy: string; comment?: string }> {
  if (!input || typeof input.id !== 'string' || !Number.isInteger(input.severity) || input.severity < 1 || input.severity > 4) {
    throw ApplicationFailure.create({ type: 'InvalidInput', nonRetryable: true, message: 'incident input needs "id" and "severity" 1-4' });
  }
  let closed: IncidentClose | undefined;
  setHandler(closeIncident, (close) => {
    closed = { user: typeof close?.user === 'string' ? close.user : '(unknown)', comment: close?.comment };
  });
  setHandler(incidentStatus, () => ({ id: input.id, severity: input.severity, title: input.title, open: closed === undefined }));
  upsertSearchAttributes([
    { key: KIND, value: 'incident' },
    { key: SEVERITY, value: input.severity },
    { key: STATUS, value: 'open' },
  ]);
  setCurrentDetails(`**severity ${input.severity} incident open**: ${input.title}`);
  await condition(() => closed !== undefined);
  upsertSearchAttributes([{ key: STATUS, value: 'closed' }]);
  setCurrentDetails(`**closed by ${closed!.user}**`);
  return { closedBy: closed!.user, comment: closed!.comment };
}
