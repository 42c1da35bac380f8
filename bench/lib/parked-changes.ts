// C3 change requests that park at their approval, and the clock of their first step: approve → step latency.
import { changeRequestStatus } from '../../cli/change-client';
import { checkChangeRequestText, type ChangeRequestFile } from '../../core/change-request-file';
import type { BenchTemporal } from './temporal';
import { withClient } from './databases';

/** The table each change's step writes its `clock_timestamp()` into. */
export const MARKS_TABLE_SQL = 'CREATE TABLE scale_marks (id text PRIMARY KEY, at timestamptz NOT NULL)';

/** A C3 change (one reviewer approves) whose only step records when it ran. */
export function markingChange(prefix: string, index: number, environment: string): Promise<ChangeRequestFile> {
  const id = `${prefix}-${String(index).padStart(4, '0')}`;
  const text = [
    `id: ${id}`,
    `title: ${prefix} ${index}`,
    'criticality: C3',
    'requestedBy: requester',
    `environments: [${environment}]`,
    'steps:',
    '  - id: mark',
    `    sql: INSERT INTO scale_marks (id, at) VALUES ('${id}', clock_timestamp());`,
    '',
  ].join('\n');
  return checkChangeRequestText(text, `${id}.yaml`);
}

export async function waitUntilParked(temporal: Pick<BenchTemporal, 'client'>, workflowId: string): Promise<void> {
  for (;;) {
    const status = await changeRequestStatus(temporal.client, workflowId).catch(() => undefined);
    if (status?.stage === 'waiting-approval') return;
    await sleep(200);
  }
}

/** When the change's step ran, in epoch milliseconds by the database's clock (on this machine). */
export async function waitForMark(url: string, id: string): Promise<number> {
  return withClient(url, async (client) => {
    for (;;) {
      const rows = await client.query<{ ms: string }>(`SELECT (extract(epoch FROM at) * 1000)::text AS ms FROM scale_marks WHERE id = $1`, [id]);
      if (rows.rows[0]) return Number(rows.rows[0].ms);
      await sleep(5);
    }
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
