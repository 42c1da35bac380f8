// The pending-migrations gauges from a real `dbchange worker --metrics-address`: per environment and database,
// fleet targets by name, and the age of the oldest pending migration; they follow what a pipeline applies.
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPipeline } from '../../cli/pipeline-client';
import { loadConfig } from '../../core/config-file';
import { METRIC } from '../../core/metric-names';
import { versionTime } from '../../core/pending';
import { freePort } from '../../examples/demo/ports';
import { createFleetProject, type FleetProject } from '../helpers/fleet';
import { createDatabase } from '../helpers/postgres';
import { assertBuilt, startWorkerProcess, stopWorkerProcesses, type WorkerProcess } from '../helpers/processes';
import { migration } from '../helpers/project';
import { createStack, eventually, type Stack } from '../helpers/stack';

const MIGRATIONS = {
  '20240801000001_create_accounts.sql': migration('CREATE TABLE accounts (id bigint PRIMARY KEY);'),
  '20240801000002_create_invoices.sql': migration('CREATE TABLE invoices (id bigint PRIMARY KEY);'),
};

/** The value of `name` whose labels are exactly `labels`, or undefined when there is no such sample. */
function gauge(metricsText: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of metricsText.split('\n')) {
    const match = /^(\w+)\{(.*)\} (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...match[2].matchAll(/(\w+)="([^"]*)"/g)].map((label) => [label[1], label[2]]));
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) return Number(match[3]);
  }
  return undefined;
}

describe('pending-migration metrics', () => {
  let stack: Stack;
  let fleet: FleetProject;
  let database: { url: string; drop(): Promise<void> };
  let worker: WorkerProcess;
  let metricsUrl: string;
  let taskQueue: string;
  const scrape = async () => (await fetch(metricsUrl)).text();

  beforeAll(async () => {
    assertBuilt();
    stack = await createStack();
    fleet = await createFleetProject('pendmet', { environment: 'pm-cells', targets: ['cell-1', 'cell-2', 'cell-3'], migrations: MIGRATIONS });
    database = await createDatabase('pendmet');
    // The fleet project's dbchange.yaml, with an environment of one database before the fleet.
    const configPath = `${fleet.dir}/dbchange.yaml`;
    writeFileSync(configPath, readFileSync(configPath, 'utf8').replace('environments:\n', `environments:\n  - name: pm-staging\n    databaseUrl: ${database.url}\n`));
    taskQueue = stack.newTaskQueue();
    const port = await freePort(20_000 + Math.floor(Math.random() * 20_000));
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
    worker = await startWorkerProcess({ address: stack.address, taskQueue, configPath }, { args: ['--metrics-address', `127.0.0.1:${port}`] });
  });
  afterAll(async () => {
    await stopWorkerProcesses(worker ? [worker] : []);
    await stack?.close();
    await fleet?.cleanup();
    await database?.drop();
  });

  it('counts what is pending on each database and fleet target as the worker starts, with the oldest pending age from its version', async () => {
    const text = await eventually(async () => {
      const scraped = await scrape();
      return gauge(scraped, METRIC.pendingMigrations, { environment: 'pm-cells', database: 'cell-3' }) !== undefined && scraped;
    }, 'the pending gauges', 30_000, 250);
    expect(gauge(text, METRIC.pendingMigrations, { environment: 'pm-staging', database: 'main' })).toBe(2);
    for (const cell of ['cell-1', 'cell-2', 'cell-3']) expect(gauge(text, METRIC.pendingMigrations, { environment: 'pm-cells', database: cell })).toBe(2);
    const age = gauge(text, METRIC.oldestPendingAge, { environment: 'pm-staging', database: 'main' })!;
    const expected = (Date.now() - versionTime('20240801000001')!) / 1000;
    expect(Math.abs(age - expected)).toBeLessThan(120);
  });

  it('drops to 0 pending and 0 age once a pipeline applied them (after the next refresh, here at start and every 60 s)', { timeout: 120_000 }, async () => {
    const config = loadConfig(`${fleet.dir}/dbchange.yaml`, {});
    const handle = await startPipeline(stack.client, config, { environments: ['pm-staging'], requestedBy: 'dave', taskQueue });
    expect((await handle.result()).stage).toBe('complete');
    const text = await eventually(async () => {
      const scraped = await scrape();
      return gauge(scraped, METRIC.pendingMigrations, { environment: 'pm-staging', database: 'main' }) === 0 && scraped;
    }, 'the gauge to follow the pipeline', 90_000, 1_000);
    expect(gauge(text, METRIC.oldestPendingAge, { environment: 'pm-staging', database: 'main' })).toBe(0);
    // The fleet was not rolled out: its targets still count theirs.
    expect(gauge(text, METRIC.pendingMigrations, { environment: 'pm-cells', database: 'cell-1' })).toBe(2);
  });
});
