// Hold: a pipeline held by an open severity-2 incident at `recheckInterval: 1s`: how many history events the hold
// adds, extrapolated to an hour, and how soon the pipeline moves on once the incident closes.
import { closeIncidentById, openIncident, pipelineStatus, startPipeline } from '../cli/pipeline-client';
import { createDatabase, migrationText, versionAt, writeProjectOf } from './lib/databases';
import type { BenchResult } from './lib/result';
import type { BenchSettings } from './lib/settings';
import { round } from './lib/stats';
import type { BenchServers } from './lib/temporal';

const GOAL_EVENTS_PER_HOUR = 10;

export async function runHold(settings: BenchSettings, servers: BenchServers): Promise<BenchResult> {
  const temporal = servers.fast;
  const database = await createDatabase(settings.adminUrl, 'hold');
  const project = writeProjectOf({ 'hold-env': database.url }, { [`${versionAt(0)}_held.sql`]: migrationText('CREATE TABLE held (id int);') }, ['productionChecks: { recheckInterval: 1s }']);
  const worker = await temporal.startWorker(project.config);
  const incident = `bench-hold-${Date.now()}`;
  try {
    await openIncident(temporal.client, { id: incident, severity: 2, title: 'bench: hold', openedBy: 'bench' }, worker.taskQueue);
    // Production checks read incidents from visibility: wait until it is listed.
    for (;;) {
      let listed = false;
      for await (const execution of temporal.client.workflow.list({ query: `WorkflowId = 'incident-${incident}' AND ExecutionStatus = 'Running'` })) listed = execution.status.name === 'RUNNING';
      if (listed) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const handle = await startPipeline(temporal.client, project.config, { requestedBy: 'bench', taskQueue: worker.taskQueue });
    while ((await pipelineStatus(temporal.client, handle.workflowId)).stage !== 'waiting-checks') await new Promise((resolve) => setTimeout(resolve, 200));
    const eventsAt = async () => (await handle.describe()).historyLength;
    const heldAt = await eventsAt();
    await new Promise((resolve) => setTimeout(resolve, settings.holdMinutes * 60_000));
    const added = (await eventsAt()) - heldAt;
    const closedAt = performance.now();
    await closeIncidentById(temporal.client, incident, 'bench');
    while ((await pipelineStatus(temporal.client, handle.workflowId)).stage === 'waiting-checks') await new Promise((resolve) => setTimeout(resolve, 50));
    const wokeMs = performance.now() - closedAt;
    await handle.result();
    const perHour = round((added * 60) / settings.holdMinutes, 1);
    console.error(`hold: ${added} events in ${settings.holdMinutes} min held (${perHour}/h); moved on ${round(wokeMs)} ms after the close`);
    return {
      name: 'hold',
      title: 'Held by an incident',
      setup: `One pipeline held by an open severity-2 incident for ${settings.holdMinutes} minutes with \`productionChecks.recheckInterval: 1s\`, on the fast-dispatch dev server; then the incident is closed. Before this round each re-check added 11 events (an activity and a timer every interval).`,
      reps: 1,
      columns: ['events added while held', 'events per hour (extrapolated)', 'moved on after the close (ms)'],
      rows: [{ method: 'dbchange pipeline', medians: { 'events added while held': added, 'events per hour (extrapolated)': perHour, 'moved on after the close (ms)': round(wokeMs) } }],
      goals: [{ goal: `holding adds ≤ ${GOAL_EVENTS_PER_HOUR} events an hour`, measured: `${added} events in ${settings.holdMinutes} min (${perHour}/h)`, met: perHour <= GOAL_EVENTS_PER_HOUR }],
      runs: [{ heldMinutes: settings.holdMinutes, added, wokeMs: round(wokeMs) }],
    };
  } finally {
    await temporal.client.workflow.getHandle(`incident-${incident}`).terminate('bench cleanup').catch(() => undefined);
    await worker.stop();
    project.cleanup();
    await database.drop();
  }
}
