// The dashboard as one HTML page: plain HTML and CSS, nothing fetched from anywhere, every value escaped.
import { targetResolveCommand } from '../core/person-actions';
import type { DatabaseRow } from './read-databases';
import type { FleetRollout, RunningChange } from './read-changes';
import { DASHBOARD_CSS } from './style';

/** The page reloads itself this often: fresh enough to follow a rollout, calm for the databases it reads. */
export const REFRESH_SECONDS = 15;

export interface DashboardData {
  namespace: string;
  taskQueue: string;
  /** Where workflow links point: the Temporal Web UI. */
  temporalUiUrl: string;
  generatedAt: Date;
  databases: DatabaseRow[];
  fleets: string[];
  changes: RunningChange[];
  moreChanges: number;
  /** Why Temporal could not be read, if it could not. */
  temporalError?: string;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

/** Tagged template: every interpolated value is escaped unless it is already rendered HTML (a Html). */
class Html {
  constructor(readonly text: string) {}
}
function html(strings: TemplateStringsArray, ...values: (string | number | Html | Html[] | undefined | false)[]): Html {
  const render = (value: (typeof values)[number]): string =>
    value === undefined || value === false ? '' : value instanceof Html ? value.text : Array.isArray(value) ? value.map(render).join('') : escapeHtml(String(value));
  return new Html(strings.reduce((out, part, index) => out + part + (index < values.length ? render(values[index]) : ''), ''));
}

export function renderDashboard(data: DashboardData): string {
  const waiting = data.changes.filter((change) => change.action);
  const pendingTotal = data.databases.reduce((sum, row) => sum + (row.pending?.length ?? 0), 0);
  const pendingOn = data.databases.filter((row) => (row.pending?.length ?? 0) > 0).length;
  const page = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="${REFRESH_SECONDS}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dbchange: ${waiting.length > 0 ? `${waiting.length} waiting for a person` : 'release dashboard'}</title>
<style>${new Html(DASHBOARD_CSS)}</style>
</head>
<body>
<header>
<h1>dbchange release dashboard</h1>
<p class="meta">namespace ${data.namespace} · task queue ${data.taskQueue} · read ${formatTime(data.generatedAt)} · reloads every ${REFRESH_SECONDS} s · read-only</p>
<p class="summary"><strong>${waiting.length}</strong> waiting for a person · <strong>${data.changes.length + data.moreChanges}</strong> running · <strong>${pendingTotal}</strong> pending migration${pendingTotal === 1 ? '' : 's'} on ${pendingOn} database${pendingOn === 1 ? '' : 's'}</p>
${data.temporalError ? html`<p class="error">Temporal could not be read: ${data.temporalError}</p>` : undefined}
</header>
<main>
${waitingSection(waiting, data)}
${pendingSection(data)}
${runningSection(data)}
${data.changes.filter((change) => change.fleet).map((change) => fleetSection(change, change.fleet!, data))}
</main>
</body>
</html>
`;
  return page.text;
}

function waitingSection(waiting: RunningChange[], data: DashboardData): Html {
  return html`<section id="waiting">
<h2>Waiting for a person</h2>
${waiting.length === 0
  ? html`<p class="quiet">Nothing waits for a decision.</p>`
  : waiting.map(
      (change) => html`<article class="decision ${change.action!.decision}">
<h3>${change.action!.decision === 'approve' ? 'Approval needed' : 'Blocked'}: ${workflowLink(change.workflowId, data)}</h3>
<p>${change.title}</p>
<p class="reason">${change.action!.reason}</p>
${change.action!.commands.map((command) => html`<pre class="command"><code>${command}</code></pre>`)}
</article>`,
    )}
</section>`;
}

function pendingSection(data: DashboardData): Html {
  return html`<section id="pending">
<h2>Pending post-deploy migrations</h2>
<table>
<thead><tr><th>environment</th><th>database</th><th class="number">pending</th><th>files</th><th>last applied</th><th>drift</th></tr></thead>
<tbody>
${data.databases.map(
  (row) => html`<tr${(row.pending?.length ?? 0) > 0 ? new Html(' class="has-pending"') : undefined}>
<td>${row.environment}</td><td>${row.database}</td>
${row.error
  ? html`<td colspan="4" class="error">cannot read: ${row.error}</td>`
  : html`<td class="number">${row.pending!.length}</td>
<td>${row.pending!.length === 0 ? html`<span class="quiet">none</span>` : html`<ul class="files">${row.pending!.map((file) => html`<li>${file.fileName}${file.outOfOrder ? html` <span class="warn">out of order (older than applied ${file.outOfOrder.newestApplied})</span>` : undefined}</li>`)}</ul>`}
${row.edited && row.edited.length > 0 ? html`<p class="error">edited after it ran: ${row.edited.map((item) => item.fileName).join(', ')}</p>` : undefined}</td>
<td>${row.lastApplied ? html`${row.lastApplied.version}${row.lastApplied.outcome !== 'applied' ? ` (${row.lastApplied.outcome})` : ''}<br><span class="quiet">${formatTime(new Date(row.lastApplied.at))} · ${ago(new Date(row.lastApplied.at), data.generatedAt)}</span>` : html`<span class="quiet">nothing yet</span>`}</td>
<td>${driftCell(row)}</td>`}
</tr>`,
)}
${data.fleets.map((fleet) => html`<tr><td>${fleet}</td><td colspan="5" class="quiet">a fleet: its targets are listed when a rollout starts, and the rollout grid below shows each one (the worker's dbchange_pending_migrations metric counts them every 10 minutes)</td></tr>`)}
</tbody>
</table>
</section>`;
}

function driftCell(row: DatabaseRow): Html {
  if (!row.drift) return html`<span class="quiet">first environment</span>`;
  if ('error' in row.drift) return html`<span class="error">cannot compare with ${row.drift.comparedWith}: ${row.drift.error}</span>`;
  if (row.drift.differences.length === 0) return html`<span class="ok">no drift from ${row.drift.comparedWith}</span>`;
  return html`<details><summary class="warn">${row.drift.differences.length} difference${row.drift.differences.length === 1 ? '' : 's'} from ${row.drift.comparedWith}</summary><ul>${row.drift.differences.slice(0, 20).map((line) => html`<li>${line}</li>`)}</ul></details>`;
}

function runningSection(data: DashboardData): Html {
  return html`<section id="running">
<h2>Running pipelines and change requests</h2>
${data.changes.length === 0
  ? html`<p class="quiet">Nothing is running on task queue ${data.taskQueue}.</p>`
  : html`<table>
<thead><tr><th>workflow</th><th>what</th><th>stage</th><th>environment</th><th>waiting for</th><th>started</th></tr></thead>
<tbody>
${data.changes.map(
  (change) => html`<tr>
<td>${workflowLink(change.workflowId, data)}</td><td>${change.title}</td>
<td><span class="stage stage-${change.stage}">${change.stage}</span></td><td>${change.environment ?? ''}</td>
<td${change.unanswered ? new Html(' class="error"') : undefined}>${change.waitingFor ?? ''}</td><td>${formatTime(new Date(change.startedAt))}</td>
</tr>`,
)}
</tbody>
</table>`}
${data.moreChanges > 0 ? html`<p class="quiet">and ${data.moreChanges} more running; see the Temporal UI.</p>` : undefined}
</section>`;
}

const STATES = ['done', 'running', 'blocked', 'failed', 'pending'] as const;

function fleetSection(change: RunningChange, fleet: FleetRollout, data: DashboardData): Html {
  const resolve = change.action?.decision === 'resolve' ? change.action.commands[0] : undefined;
  return html`<section class="fleet" id="fleet-${fleet.environment}">
<h2>Fleet rollout: ${fleet.environment} <span class="quiet">(${workflowLink(change.workflowId, data)}, wave ${fleet.wave} of ${fleet.waves.length})</span></h2>
<p class="legend">${STATES.map((state) => html`<span class="cell ${state}"></span> ${state} `)}</p>
${fleet.waves.map((wave) => {
  const counts = STATES.map((state) => [state, wave.targets.filter((target) => target.state === state).length] as const).filter(([, count]) => count > 0);
  return html`<div class="wave">
<h3>wave ${wave.wave}: ${wave.targets.length} target${wave.targets.length === 1 ? '' : 's'}, ${counts.map(([state, count]) => `${count} ${state}`).join(', ')}</h3>
<div class="grid">${wave.targets.map((target) => html`<span class="cell ${target.state}" title="${target.name}: ${target.state}"></span>`)}</div>
</div>`;
})}
${issueList('Blocked targets', fleet.blocked, resolve)}
${issueList('Failed targets', fleet.failed, undefined)}
</section>`;
}

function issueList(title: string, issues: FleetRollout['blocked'], resolve: string | undefined): Html | undefined {
  if (issues.length === 0) return undefined;
  return html`<h3>${title}</h3>
<table class="issues">
<thead><tr><th>target</th><th>wave</th><th>migration</th><th>error</th>${resolve ? html`<th>decide with</th>` : undefined}</tr></thead>
<tbody>
${issues.map(
  (issue) => html`<tr><td>${issue.target}</td><td>${issue.wave + 1}</td><td>${issue.version ?? ''}</td><td class="error">${issue.error}</td>${resolve ? html`<td><pre class="command"><code>${targetResolveCommand(resolve, issue.target)}</code></pre></td>` : undefined}</tr>`,
)}
</tbody>
</table>`;
}

function workflowLink(workflowId: string, data: DashboardData): Html {
  const href = `${data.temporalUiUrl.replace(/\/$/, '')}/namespaces/${encodeURIComponent(data.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return html`<a href="${href}">${workflowId}</a>`;
}

function formatTime(date: Date): string {
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** "3 h ago": how long since, in the largest whole unit. */
export function ago(then: Date, now: Date): string {
  const seconds = Math.max(0, Math.round((now.getTime() - then.getTime()) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86_400)} d ago`;
}
