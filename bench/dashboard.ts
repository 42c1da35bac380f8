// Dashboard: `dbchange dashboard`'s page for a 1,000-target fleet rollout halted on one blocked target, timed as
// the server answers it and as Chromium loads and lays it out.
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { pipelineStatus, startPipeline } from '../cli/pipeline-client';
import { parseConfig } from '../core/config';
import { startDashboard } from '../dashboard/server';
import { openBenchBrowser } from './lib/browser';
import { withClient } from './lib/databases';
import { FLEET_ENVIRONMENT, writeFleetProject } from './lib/fleet-project';
import { createSchemaTargets } from './lib/fleet-targets';
import type { BenchResult } from './lib/result';
import type { BenchSettings } from './lib/settings';
import { median, percentile, round } from './lib/stats';
import type { BenchServers } from './lib/temporal';

const RENDER_GOAL_MS = 1_000;
/** The blocked target: halfway through the fleet, so the grid holds done, blocked and pending targets. */
const BROKEN_AT = 0.5;
const BLOCK_TIMEOUT_MS = 10 * 60_000;

export async function runDashboard(settings: BenchSettings, servers: BenchServers): Promise<BenchResult> {
  const count = settings.fleetTargets;
  const targets = await createSchemaTargets(settings.adminUrl, 'dash', count);
  const broken = targets.targets[Math.floor(count * BROKEN_AT)];
  const project = writeFleetProject(targets.targets, settings.fleetConcurrency);
  const temporal = servers.fast;
  let worker: { taskQueue: string; stop(): Promise<void> } | undefined;
  try {
    // Its invoices table is already there: the third migration fails with 42P07 and halts the wave.
    await withClient(broken.url, (client) => client.query(`CREATE TABLE ${broken.schema}.invoices (id int)`));
    const config = parseConfig(readFileSync(project.configPath, 'utf8'), project.configPath, process.env, dirname(project.configPath));
    worker = await temporal.startWorker(config);
    const handle = await startPipeline(temporal.client, config, { requestedBy: 'bench', taskQueue: worker.taskQueue });
    const deadline = Date.now() + BLOCK_TIMEOUT_MS;
    while ((await pipelineStatus(temporal.client, handle.workflowId)).stage !== 'blocked') {
      if (Date.now() > deadline) throw new Error(`the rollout did not block on ${broken.name} within ${BLOCK_TIMEOUT_MS / 60_000} min`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const dashboard = await startDashboard({ config, client: temporal.client, taskQueue: worker.taskQueue, port: 0 });
    const browser = await openBenchBrowser();
    const serverMs: number[] = [];
    const browserMs: number[] = [];
    let pageKb = 0;
    let cells = 0;
    try {
      // Once unmeasured: visibility is eventually consistent, and the first connection warms up.
      await waitUntilListed(dashboard.url, handle.workflowId);
      for (let rep = 0; rep < settings.reps; rep++) {
        const asked = performance.now();
        const body = await (await fetch(dashboard.url)).text();
        serverMs.push(performance.now() - asked);
        pageKb = Buffer.byteLength(body) / 1024;
        const opened = performance.now();
        await browser.page.goto(dashboard.url, { waitUntil: 'load' });
        // Laid out: the grid's last cell has a box.
        await browser.page.locator('.grid .cell').last().boundingBox();
        browserMs.push(performance.now() - opened);
        cells = await browser.page.locator('.grid .cell').count();
      }
    } finally {
      await browser.close();
      await dashboard.close();
      await handle.terminate('dashboard benchmark done');
    }
    console.error(`dashboard: ${cells} cells, ${round(pageKb)} KB; server p50 ${round(median(serverMs))} ms, browser p50 ${round(median(browserMs))} ms`);
    return {
      name: 'dashboard',
      title: 'Dashboard',
      setup: `A fleet rollout over ${count} schemas of one database (\`${FLEET_ENVIRONMENT}\`, waves \`[{count: 1}, {percent: 10}, {percent: 100}]\`, concurrency ${settings.fleetConcurrency}, haltAfterFailures 1) halted on one blocked target halfway (${broken.name}, 42P07), on the \`FAST_DISPATCH\` dev server with an in-process worker. \`dbchange dashboard\`'s server in-process: each view runs the visibility query, the pipeline's status and fleetTargets queries, and renders the ${count}-cell grid. Timed ${settings.reps} times after one unmeasured view: the server's answer (fetch of the whole page) and Chromium (playwright-core) loading it until the load event and the grid's last cell is laid out.`,
      reps: settings.reps,
      columns: ['server answer (ms)', 'browser render (ms)', 'page (KB)', 'grid cells'],
      rows: [{ method: `${count} fleet targets`, medians: { 'server answer (ms)': round(median(serverMs)), 'browser render (ms)': round(median(browserMs)), 'page (KB)': round(pageKb), 'grid cells': cells } }],
      goals: [
        {
          goal: `the page with ${count} fleet targets renders within 1 s`,
          measured: `median ${round(median(browserMs))} ms, max ${round(percentile(browserMs, 100))} ms in Chromium (server answer median ${round(median(serverMs))} ms)`,
          met: percentile(browserMs, 100) <= RENDER_GOAL_MS,
          limitedBy: `the server's ${round(median(serverMs))} ms (Temporal queries and the read of the databases) and Chromium's layout of ${cells} cells`,
        },
      ],
      runs: [{ serverMs: serverMs.map((ms) => round(ms)), browserMs: browserMs.map((ms) => round(ms)), pageKb: round(pageKb, 1), cells }],
    };
  } finally {
    await worker?.stop();
    project.cleanup();
    await targets.drop();
  }
}

async function waitUntilListed(url: string, workflowId: string): Promise<void> {
  for (let attempt = 0; attempt < 60; attempt++) {
    if ((await (await fetch(url)).text()).includes(`id="fleet-${FLEET_ENVIRONMENT}"`)) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`the dashboard did not show the rollout of ${workflowId} within 30 s`);
}
