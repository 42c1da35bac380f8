// Fleets on the real stack: targets listed by a file or a registry query, rolled out in waves with a concurrency
// limit; a failed target blocks only itself, a failed canary halts the rollout, and decisions name targets.
import { afterAll, describe, expect, it } from 'vitest';
import { pipelineStatus, sendDecision, startPipeline } from '../../cli/pipeline-client';
import type { PipelineStatus } from '../../core/pipeline';
import { createFleetProject, schemaOf, type FleetProject, type FleetSpec } from '../helpers/fleet';
import { query } from '../helpers/postgres';
import { runCli } from '../helpers/processes';
import { migration } from '../helpers/project';
import { eventually, historyText, replayWorkflows } from '../helpers/stack';
import { useSuite } from '../helpers/suite';

const MIGRATIONS = {
  '20240801000001_create_accounts.sql': migration('CREATE TABLE accounts (id bigint PRIMARY KEY);'),
  '20240801000002_create_invoices.sql': migration('CREATE TABLE invoices (id bigint PRIMARY KEY, account_id bigint);'),
};
const BOTH = ['20240801000001', '20240801000002'];
const names = (prefix: string, count: number) => Array.from({ length: count }, (_, index) => `${prefix}-${String(index + 1).padStart(2, '0')}`);

describe('fleet rollouts', () => {
  const suite = useSuite();
  const projects: FleetProject[] = [];
  afterAll(async () => {
    await Promise.all(projects.map((project) => project.cleanup()));
  });

  /** A fleet project, prepared (`prepare`), and its pipeline started. */
  async function start(prefix: string, spec: Omit<FleetSpec, 'migrations'> & { migrations?: FleetSpec['migrations'] }, prepare?: (project: FleetProject) => Promise<void>) {
    const project = await createFleetProject(prefix, { migrations: MIGRATIONS, ...spec });
    projects.push(project);
    await prepare?.(project);
    const taskQueue = suite.stack.newTaskQueue();
    await suite.stack.startWorker(project.config, taskQueue);
    const handle = await startPipeline(suite.stack.client, project.config, { requestedBy: 'dave', taskQueue });
    suite.workflowIds.push(handle.workflowId);
    const cli = (...args: string[]) => runCli({ address: suite.stack.address, taskQueue, configPath: project.configPath }, args, { timeoutMs: 60_000 });
    return { project, handle, cli };
  }

  const waitFor = (workflowId: string, what: string, check: (status: PipelineStatus) => boolean) =>
    eventually(async () => {
      const status = await pipelineStatus(suite.stack.client, workflowId);
      return check(status) && status;
    }, `${workflowId}: ${what}`, 60_000);

  it('rolls every target of a file-listed fleet out in its waves, each schema with its own schema_migrations', async () => {
    const targets = names('cell', 12);
    const password = 'fleet-target-password-5e1';
    const { project, handle } = await start('fleetok', { environment: 'cells', targets, waves: '[{count: 1}, {percent: 50}, {percent: 100}]', concurrency: 4, password });
    const final = await handle.result();
    expect(final.stage).toBe('complete');
    const fleet = final.results[0].fleet!;
    expect(fleet.targets).toBe(12);
    expect(fleet.waves.map((wave) => [wave.size, wave.done, wave.pending, wave.blocked, wave.failed])).toEqual([
      [1, 1, 0, 0, 0],
      [5, 5, 0, 0, 0],
      [6, 6, 0, 0, 0],
    ]);
    expect(final.results[0].counts.applied).toBe(24);
    for (const target of targets) {
      expect(await project.versions(target)).toEqual(BOTH);
      expect(await query(project.url, `SELECT to_regclass('${schemaOf(target)}.invoices') IS NOT NULL AS made`)).toEqual([{ made: true }]);
    }
    // Nothing landed outside the targets' schemas, and the targets' URLs stayed in the worker.
    expect(await query(project.url, `SELECT to_regclass('public.schema_migrations') IS NULL AS clean`)).toEqual([{ clean: true }]);
    const history = await historyText(suite.stack, handle.workflowId);
    // The Temporal UI names each target's activity by its summary.
    expect(history).toContain('migrate cell-07 (cells, wave 3)');
    expect(history).not.toContain(password);
    expect(history).not.toContain('postgres://');
  });

  it('blocks only the failing target: its wave goes on, and a retry by name finishes it once the cause is fixed', async () => {
    const targets = names('shard', 6);
    const broken = 'shard-04';
    // shard-04 already has an invoices table: the second migration fails there with 42P07.
    const { project: fleet, handle, cli } = await start('fleetblk', { environment: 'shards', targets, haltAfterFailures: 3, concurrency: 2 }, (project) =>
      query(project.url, `CREATE TABLE ${schemaOf(broken)}.invoices (id int)`).then(() => undefined),
    );

    const blocked = await waitFor(handle.workflowId, 'blocked on shard-04', (status) => status.stage === 'blocked');
    const wave = blocked.results[0].fleet!.waves[1];
    expect([wave.done, wave.blocked, wave.pending, wave.running]).toEqual([4, 1, 0, 0]);
    expect(wave.blockedTargets.map((issue) => issue.target)).toEqual([broken]);
    expect(wave.blockedTargets[0].error).toMatch(/42P07/);
    for (const target of targets.filter((name) => name !== broken)) expect(await fleet.versions(target)).toEqual(BOTH);
    expect(await fleet.versions(broken)).toEqual(['20240801000001']);

    const status = await cli('pdm', 'status', handle.workflowId);
    expect(status.stdout).toContain('    wave 2 (5 targets): 4 done, 1 blocked\n      blocked shard-04: ');
    expect(status.stdout).toContain(`--as USER --target NAME|all-blocked --action retry|mark-complete|abort`);
    process.stdout.write(`pdm status of a fleet with a blocked target:\n${status.stdout}\n`);

    expect(await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'alice', action: 'retry' })).toMatchObject({
      accepted: false,
      reason: expect.stringContaining('name the target: --target NAME (blocked: shard-04) or --target all-blocked'),
    });
    expect(await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'alice', action: 'retry', target: 'shard-01' })).toMatchObject({ accepted: false });
    await query(fleet.url, `DROP TABLE ${schemaOf(broken)}.invoices`);
    const retried = await cli('resolve', handle.workflowId, '--as', 'alice', '--target', broken, '--action', 'retry');
    expect(retried.stdout).toBe('accepted: resolved: retry for shard-04\n');
    const final = await handle.result();
    expect(final.stage).toBe('complete');
    expect(await fleet.versions(broken)).toEqual(BOTH);
    expect(final.decisions.filter((decision) => decision.accepted).map((decision) => decision.target)).toEqual([broken]);
  });

  it('halts after a failed canary: nothing is applied to the next wave, and abort ends the pipeline', async () => {
    const targets = names('canary', 5);
    const { project, handle } = await start('fleetcan', { environment: 'tenants', targets, haltAfterFailures: 1, migrations: { ...MIGRATIONS, '20240801000003_broken.sql': migration('SELECT * FROM no_such_table;') } });
    const blocked = await waitFor(handle.workflowId, 'the canary blocked', (status) => status.stage === 'blocked');
    expect(blocked.results[0].fleet!.waves.map((wave) => [wave.done, wave.blocked, wave.pending])).toEqual([[0, 1, 0], [0, 0, 4]]);
    // Giving the canary up leaves the wave halted: one failure of haltAfterFailures 1.
    expect(await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'alice', action: 'abort', target: 'canary-01' })).toMatchObject({ accepted: true });
    const halted = await waitFor(handle.workflowId, 'halted', (status) => status.stage === 'blocked' && status.results[0].fleet!.waves[0].failed === 1);
    expect(halted.lastError).toContain('halted: 1 failed of haltAfterFailures 1');
    expect(await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'alice', action: 'abort' })).toMatchObject({ accepted: true });
    await expect(handle.result()).rejects.toThrow();
    expect(await project.versions('canary-01')).toEqual(BOTH);
    for (const target of targets.slice(1)) expect(await project.versions(target)).toBeNull();
  });

  it('stops every running target when a person aborts mid-wave: their SQL is cancelled and rolled back, and the pipeline ends', async () => {
    const targets = names('slow', 3);
    const slow = { '20240801000009_slow.sql': migration('CREATE TABLE slow_made (id int);\nSELECT pg_sleep(60);') };
    const { project, handle } = await start('fleetstop', { environment: 'slowcells', targets, waves: '[{percent: 100}]', concurrency: 3, migrations: slow });
    await waitFor(handle.workflowId, 'three targets running', (status) => status.results[0]?.fleet?.waves[0].running === 3);
    // Until the targets stop, a decision about one of them is refused: only abort is accepted now.
    expect(await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'alice', action: 'abort', target: 'slow-01' })).toMatchObject({ accepted: false });
    const askedAt = Date.now();
    expect(await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'alice', action: 'abort', comment: 'wrong package' })).toMatchObject({ accepted: true });
    await expect(handle.result()).rejects.toThrow();
    expect(Date.now() - askedAt).toBeLessThan(20_000);
    const final = await pipelineStatus(suite.stack.client, handle.workflowId);
    expect(final.stage).toBe('aborted');
    expect(final.summary).toContain('stopped slow-01, slow-02, slow-03 while they ran');
    for (const target of targets) {
      expect((await project.versions(target)) ?? []).toEqual([]);
      expect(await query(project.url, `SELECT to_regclass('${schemaOf(target)}.slow_made') IS NULL AS rolled_back`)).toEqual([{ rolled_back: true }]);
    }
    expect(await query(project.url, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()`)).toEqual([{ n: 0 }]);
  });

  it('refuses a registry that lists a name twice or a malformed URL before anything runs, naming the rows', async () => {
    const targets = names('reg', 3);
    const { project, handle } = await start('fleetreg', { environment: 'cellsreg', targets, registry: true }, async (fleet) => {
      await fleet.register('reg-02');
      await fleet.register('reg-09', 'not a url');
    });
    const blocked = await waitFor(handle.workflowId, 'blocked on the listing', (status) => status.stage === 'blocked');
    expect(blocked.lastError).toContain('registry row 4 (name "reg-02"): duplicate name, also row 2');
    expect(blocked.lastError).toMatch(/registry row 5 \(name "reg-09"\): url/);
    expect(blocked.lastError).not.toContain(project.url);
    for (const target of targets) expect(await project.versions(target)).toBeNull();
    expect(await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'alice', action: 'abort' })).toMatchObject({ accepted: true });
    await expect(handle.result()).rejects.toThrow();
  });

  it('walks the targets listed when the rollout started: one registered between waves waits for the next pipeline', async () => {
    const targets = names('grow', 3);
    const { project, handle } = await start('fleetgrow', { environment: 'cellsgrow', targets, registry: true, approvalRoles: ['release-manager'] });
    await waitFor(handle.workflowId, 'the approval before wave 2', (status) => status.stage === 'waiting-approval');
    expect(await project.versions('grow-01')).toEqual(BOTH);
    await query(project.url, 'CREATE SCHEMA grow_04');
    await project.register('grow-04');
    expect(await sendDecision(suite.stack.client, handle.workflowId, 'approve', { user: 'alice', role: 'release-manager' })).toMatchObject({ accepted: true });
    const final = await handle.result();
    expect(final.stage).toBe('complete');
    expect(final.results[0].fleet!.targets).toBe(3);
    for (const target of targets) expect(await project.versions(target)).toEqual(BOTH);
    expect(await project.versions('grow-04')).toBeNull();
  });

  it('blocks a target whose pending migration requires a backfill it has not finished, and runs it once the target records one', async () => {
    const targets = names('ring', 3);
    const withForeignKey = {
      ...MIGRATIONS,
      '20240801000003_fk_invoices_accounts.sql': `-- dbchange:requires-backfill fill_accounts\n${migration('ALTER TABLE invoices ADD CONSTRAINT fk_invoices_accounts FOREIGN KEY (account_id) REFERENCES accounts (id) NOT VALID;')}`,
    };
    const { project: fleet, handle, cli } = await start('fleetbf', { environment: 'rings', targets, migrations: withForeignKey, waves: '[{percent: 100}]', concurrency: 3, haltAfterFailures: 3 });

    const blocked = await waitFor(handle.workflowId, 'every ring blocked', (status) => status.stage === 'blocked' && status.results[0].fleet!.waves.every((wave) => wave.running === 0 && wave.pending === 0));
    const issues = blocked.results[0].fleet!.waves.flatMap((wave) => wave.blockedTargets);
    expect(issues.map((issue) => issue.target).sort()).toEqual(targets);
    for (const issue of issues) {
      expect(issue.error).toContain(`20240801000003_fk_invoices_accounts.sql requires backfill fill_accounts, not finished on ${issue.target}; backfills do not run on fleet targets yet`);
    }
    // Everything before the foreign key ran; the key itself nowhere.
    for (const target of targets) expect(await fleet.versions(target)).toEqual(BOTH);

    // ring-02 records the backfill as done by hand, as the message says: a retry runs the key there.
    await query(fleet.url, `INSERT INTO ${schemaOf('ring-02')}.dbchange_backfills (name, version, checksum, state, decided_by) VALUES ('fill_accounts', 'by hand', 'by hand', 'finished', 'alice')`);
    expect((await cli('resolve', handle.workflowId, '--as', 'alice', '--target', 'ring-02', '--action', 'retry')).stdout).toBe('accepted: resolved: retry for ring-02\n');
    await eventually(async () => (await fleet.versions('ring-02'))?.length === 3, 'the key on ring-02');
    expect(await query(fleet.url, `SELECT count(*)::int AS keys FROM pg_constraint WHERE conname = 'fk_invoices_accounts'`)).toEqual([{ keys: 1 }]);
    expect(await fleet.versions('ring-01')).toEqual(BOTH);
    expect((await cli('resolve', handle.workflowId, '--as', 'alice', '--action', 'abort')).code).toBe(0);
    await expect(handle.result()).rejects.toMatchObject({ cause: { message: expect.stringMatching(/^aborted by alice/) } });
  });

  it('replays every workflow of this file without nondeterminism', async () => {
    expect(await replayWorkflows(suite.stack, suite.workflowIds)).toBe(suite.workflowIds.length);
  });
});
