// The release manager's dashboard in a real browser: `dbchange dashboard` as a process, on one project with a
// pending migration, a pipeline waiting for approval, a blocked change request and a 200-target fleet rollout with
// one blocked target. What a person reads is asserted, and no database URL or password reaches the page.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changeRequestStatus, startChangeRequest } from '../../cli/change-client';
import { pipelineStatus, startPipeline } from '../../cli/pipeline-client';
import { readChangeRequestFile } from '../../core/change-request-file';
import type { DbChangeConfig } from '../../core/config';
import { loadConfig } from '../../core/config-file';
import { freePort } from '../../examples/demo/ports';
import { ARTIFACTS_DIR, openBrowser, type HeadlessBrowser } from '../helpers/browser';
import { createFleetProject, schemaOf, type FleetProject } from '../helpers/fleet';
import { createDatabase, query } from '../helpers/postgres';
import { assertBuilt, startDashboardProcess, stopWorkerProcesses, type WorkerProcess } from '../helpers/processes';
import { DEFAULT_APPROVERS, migration } from '../helpers/project';
import { eventually, replayWorkflows } from '../helpers/stack';
import { useSuite } from '../helpers/suite';

const PASSWORD = 'dashboard-db-password-7c2e';
const MIGRATIONS = {
  '20240801000001_create_accounts.sql': migration('CREATE TABLE accounts (id bigint PRIMARY KEY);'),
  '20240801000002_create_invoices.sql': migration('CREATE TABLE invoices (id bigint PRIMARY KEY, account_id bigint);'),
};
const TARGETS = Array.from({ length: 200 }, (_, index) => `cell-${String(index + 1).padStart(3, '0')}`);
/** In the third wave (targets 21 to 200): the first two waves finish, the third halts on it. */
const BROKEN = 'cell-150';
const PIPELINE = 'pdm-dash-staging+dash-production';
const FLEET_PIPELINE = 'pdm-dash-cells';
const CHANGE = 'cr-dash-widen-notes';

describe('the release dashboard, in a real browser', () => {
  const suite = useSuite();
  let fleet: FleetProject;
  let databases: { url: string; drop(): Promise<void> }[] = [];
  let config: DbChangeConfig;
  let configPath: string;
  let taskQueue: string;
  let dashboard: WorkerProcess;
  let dashboardUrl: string;
  let browser: HeadlessBrowser;

  beforeAll(async () => {
    assertBuilt();
    // One project, as a team has it: two environments of one database each, and a fleet, in one dbchange.yaml.
    fleet = await createFleetProject('dashfleet', { environment: 'dash-cells', targets: TARGETS, migrations: MIGRATIONS, password: PASSWORD });
    await query(fleet.url, `CREATE TABLE ${schemaOf(BROKEN)}.invoices (id int)`);
    databases = await Promise.all([createDatabase('dashstg'), createDatabase('dashprd')]);
    const [staging, production] = databases.map((database) => withPassword(database.url));
    configPath = join(fleet.dir, 'dbchange.yaml');
    writeFileSync(
      configPath,
      [
        'migrations:',
        '  postDeploy: db/post_migrate',
        'environments:',
        '  - name: dash-staging',
        `    databaseUrl: ${staging}`,
        '  - name: dash-production',
        `    databaseUrl: ${production}`,
        '    approval: { roles: [release-manager] }',
        '  - name: dash-cells',
        '    fleet:',
        '      source: { file: targets.yaml }',
        '      waves: [{count: 1}, {percent: 10}, {percent: 100}]',
        '      concurrency: 8',
        '      haltAfterFailures: 1',
        'approvers:',
        ...Object.entries(DEFAULT_APPROVERS).map(([user, roles]) => `  ${user}: [${roles.join(', ')}]`),
        '  msmiley: [eoc]',
        'productionChecks: { recheckInterval: 1s }',
        '',
      ].join('\n'),
    );
    config = loadConfig(configPath, {});
    taskQueue = suite.stack.newTaskQueue();
    await suite.stack.startWorker(config, taskQueue);

    await startPipeline(suite.stack.client, config, { environments: ['dash-staging', 'dash-production'], packageVersion: '18.2.0', requestedBy: 'dave', taskQueue });
    await startPipeline(suite.stack.client, config, { environments: ['dash-cells'], requestedBy: 'dave', taskQueue });
    suite.workflowIds.push(PIPELINE, FLEET_PIPELINE);
    await suite.waitForStage(PIPELINE, 'waiting-approval');
    const changeFile = join(fleet.dir, 'widen-notes.yaml');
    writeFileSync(
      changeFile,
      ['id: dash-widen-notes', 'title: widen account notes', 'criticality: C4', 'requestedBy: msmiley', 'environments: [dash-staging]', 'steps:', '  - id: widen-notes', '    sql: ALTER TABLE account_notes ALTER COLUMN body TYPE text;', ''].join('\n'),
    );
    await startChangeRequest(suite.stack.client, config, await readChangeRequestFile(changeFile), { taskQueue });
    suite.workflowIds.push(CHANGE);
    await eventually(async () => (await changeRequestStatus(suite.stack.client, CHANGE)).stage === 'blocked', 'the change request to block', 60_000);
    await eventually(async () => (await pipelineStatus(suite.stack.client, FLEET_PIPELINE)).stage === 'blocked', 'the fleet to block on cell-150', 120_000);

    const port = await freePort(20_000 + Math.floor(Math.random() * 20_000));
    dashboardUrl = `http://127.0.0.1:${port}/`;
    dashboard = await startDashboardProcess({ address: suite.stack.address, taskQueue, configPath }, port);
    browser = await openBrowser();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await stopWorkerProcesses(dashboard ? [dashboard] : []);
    await fleet?.cleanup();
    await Promise.all(databases.map((database) => database.drop()));
  });

  it('shows what waits for whom with the command to copy, what is pending where, what runs, and the fleet grid; nothing else is loaded and no secret is shown', { timeout: 120_000 }, async () => {
    const { page } = browser;
    const requested: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
    // Visibility is eventually consistent: reload until the three running workflows are listed.
    await eventually(async () => {
      await page.goto(dashboardUrl);
      return (await page.locator('#running tbody tr').count()) === 3;
    }, 'the three running workflows on the dashboard', 45_000, 500);
    const html = await page.content();

    const waiting = page.locator('#waiting');
    expect(await waiting.locator('article h3').allInnerTexts()).toEqual(expect.arrayContaining([`Approval needed: ${PIPELINE}`, `Blocked: ${CHANGE}`, `Blocked: ${FLEET_PIPELINE}`]));
    const commands = await waiting.locator('pre.command').allInnerTexts();
    expect(commands).toContain(`dbchange approve ${PIPELINE} --as USER --role release-manager`);
    expect(commands).toContain(`dbchange resolve ${CHANGE} --as USER --action retry|abort`);
    expect(commands).toContain(`dbchange resolve ${FLEET_PIPELINE} --as USER --target NAME|all-blocked --action retry|mark-complete|abort`);
    expect(await waiting.innerText()).toContain('waiting for approval by release-manager before dash-production');
    expect(await waiting.innerText()).toMatch(/widen-notes.*42P01.*account_notes/s);

    const cells = (environment: string) =>
      page.locator('#pending tbody tr').filter({ has: page.locator('td:first-child', { hasText: new RegExp(`^${environment}$`) }) }).locator('td').allInnerTexts();
    const [, database, count, files, lastApplied, drift] = await cells('dash-production');
    expect([database, count, files.split('\n'), lastApplied]).toEqual(['main', '2', Object.keys(MIGRATIONS), 'nothing yet']);
    expect(drift).toMatch(/^\d+ differences from dash-staging$/);
    const staging = await cells('dash-staging');
    expect(staging.slice(1, 4)).toEqual(['main', '0', 'none']);
    expect(staging[4]).toMatch(/^20240801000002\n\d{4}-\d\d-\d\d \d\d:\d\d UTC · \d+ (s|min) ago$/);
    expect(staging[5]).toBe('first environment');
    expect((await cells('dash-cells'))[1]).toMatch(/^a fleet: its targets are listed when a rollout starts/);
    expect(await page.locator('#pending .has-pending').count()).toBe(1);

    const link = page.getByRole('link', { name: PIPELINE }).first();
    expect(await link.getAttribute('href')).toBe(`http://localhost:8233/namespaces/default/workflows/${encodeURIComponent(PIPELINE)}`);
    const running = await page.locator('#running tbody tr').allInnerTexts();
    expect(running.find((text) => text.startsWith(PIPELINE))).toContain('post-deploy migrations for 18.2.0: dash-staging → dash-production, requested by dave\twaiting-approval\tdash-production');

    const grid = page.locator('#fleet-dash-cells');
    expect(await grid.locator('.grid .cell').count()).toBe(200);
    expect(await grid.locator('.grid .cell.blocked').count()).toBe(1);
    expect(await grid.locator('.grid .cell.blocked').getAttribute('title')).toBe(`${BROKEN}: blocked`);
    const waves = await grid.locator('.wave h3').allInnerTexts();
    expect(waves.slice(0, 2)).toEqual(['wave 1: 1 target, 1 done', 'wave 2: 19 targets, 19 done']);
    expect(waves[2]).toMatch(/^wave 3: 180 targets, \d+ done, 1 blocked, \d+ pending$/);
    expect(await grid.locator('table.issues tbody tr').count()).toBe(1);
    expect(await grid.locator('table.issues tbody td').allInnerTexts()).toEqual([
      BROKEN,
      '3',
      '20240801000002',
      '20240801000002_create_invoices.sql:2: ERROR 42P07: relation "invoices" already exists',
      `dbchange resolve ${FLEET_PIPELINE} --as USER --target ${BROKEN} --action retry|mark-complete|abort`,
    ]);

    // Only the page itself was fetched: no scripts, fonts, styles or images from anywhere.
    expect(new Set(requested)).toEqual(new Set([dashboardUrl]));
    expect(html).not.toContain(PASSWORD);
    expect(html).not.toMatch(/postgres(ql)?:\/\//);
    await browser.screenshot('dashboard-01-overview');
    await grid.screenshot({ path: join(ARTIFACTS_DIR, 'dashboard-02-fleet-rollout.png') });
  });

  it('answers only GET: the page sends nothing, and nothing can be sent through it', async () => {
    const post = await fetch(dashboardUrl, { method: 'POST', body: 'approve' });
    expect(post.status).toBe(405);
    const get = await fetch(dashboardUrl);
    expect(get.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await get.text()).not.toContain(PASSWORD);
  });

  it('replays the histories it produced without nondeterminism', async () => {
    expect(await replayWorkflows(suite.stack, suite.workflowIds)).toBe(3);
  });
});

function withPassword(url: string): string {
  const parsed = new URL(url);
  parsed.password = PASSWORD;
  return parsed.toString();
}

