// Change requests on the real stack: the seed examples from the CLI, approvals by criticality, dry runs, rollbacks.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { changeRequestStatus, startChangeRequest } from '../../cli/change-client';
import { sendDecision } from '../../cli/pipeline-client';
import { readChangeRequestFile } from '../../core/change-request-file';
import type { ChangeRequestStatus, ChangeStage } from '../../core/change-status';
import { dumpDatabase, loadDemoSchema, SEED_000_CR, SEED_003_CR, writeChangeRequest } from '../helpers/change-requests';
import { query } from '../helpers/postgres';
import { parseJsonOutput, runCli, type CliTarget } from '../helpers/processes';
import { eventually, historyText, replayWorkflows } from '../helpers/stack';
import { startWebhookReceiver } from '../helpers/webhook';
import type { ProjectSpec } from '../helpers/project';
import { useSuite } from '../helpers/suite';
import { migration } from '../helpers/project';
import { CRITICALITY, ENVIRONMENT, KIND, STATUS } from '../../core/search-attributes';

const APPROVERS = { alice: ['eoc', 'release-manager'], bob: ['manager'], carol: ['reviewer'], dave: ['eoc', 'manager'], msmiley: ['eoc'] };
/** Seed 000's incident: the key was added before ci_runners_e59bb2812d was backfilled. */
const PREMATURE_FK = `ALTER TABLE ci_runner_machines ADD CONSTRAINT fk_rails_3f92913d27 FOREIGN KEY (runner_id) REFERENCES ci_runners_e59bb2812d (id) ON DELETE CASCADE NOT VALID`;
const REGISTER_MACHINE = `INSERT INTO ci_runner_machines (runner_id, system_xid) VALUES (2, 's_' || md5(random()::text))`;
const DATABASE_PASSWORD = 'cr-db-password-91f3';
const ORPHANS = `SELECT count(*)::int AS n FROM ci_pipeline_chat_data d WHERE NOT EXISTS (SELECT 1 FROM chat_names c WHERE c.id = d.chat_name_id)`;

describe('change requests', () => {
  const suite = useSuite();

  async function demoProject(prefix: string, environments: string[], extra: Pick<ProjectSpec, 'changeRequests' | 'webhookUrl' | 'password'> = {}) {
    const project = await suite.project(prefix, { environments: environments.map((name) => ({ name })), migrations: {}, approvers: APPROVERS, ...extra });
    for (const url of Object.values(project.urls)) await loadDemoSchema(url);
    const taskQueue = suite.stack.newTaskQueue();
    await suite.stack.startWorker(project.config, taskQueue);
    const target: CliTarget = { address: suite.stack.address, taskQueue, configPath: project.configPath };
    return { project, taskQueue, target };
  }

  function waitForStage(workflowId: string, stage: ChangeStage, timeoutMs = 60_000): Promise<ChangeRequestStatus> {
    return eventually(async () => {
      const snapshot = await changeRequestStatus(suite.stack.client, workflowId);
      return snapshot.stage === stage && snapshot;
    }, `${workflowId} to reach ${stage}`, timeoutMs);
  }

  async function cli(target: CliTarget, args: string[], expectedCode = 0) {
    const result = await runCli(target, args, { timeoutMs: 60_000 });
    if (result.code !== expectedCode) throw new Error(`dbchange ${args.join(' ')} exited ${result.code}, expected ${expectedCode}: ${result.stderr}${result.stdout}`);
    return result;
  }

  it('seed 000 from the CLI: drops the premature key with the seed lock order and a 1s statement timeout, retrying while a session holds a conflicting lock', async () => {
    const { project, target } = await demoProject('cr000', ['staging', 'production']);
    for (const url of Object.values(project.urls)) await query(url, PREMATURE_FK);
    // The incident: runner 2 is not backfilled into ci_runners_e59bb2812d, so registering a machine fails.
    await expect(query(project.urls.staging, REGISTER_MACHINE)).rejects.toThrow(/violates foreign key constraint "fk_rails_3f92913d27"/);

    const { checksum } = parseJsonOutput<{ checksum: string }>(await cli(target, ['cr', 'validate', SEED_000_CR, '--json']));
    const started = await cli(target, ['cr', 'execute', SEED_000_CR]);
    expect(started.stdout).toContain('waiting for approval by eoc and manager (different people, not msmiley)');
    const workflowId = 'cr-drop-premature-fk-3f92913d27';
    suite.workflowIds.push(workflowId);

    // The application holds a lock that conflicts with the seed's LOCK TABLE while the change starts.
    const blocker = new pg.Client({ connectionString: project.urls.staging });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE ci_runner_machines IN ROW EXCLUSIVE MODE');
    await cli(target, ['approve', workflowId, '--as', 'alice', '--role', 'eoc', '--checksum', checksum.slice(0, 12)]);
    await cli(target, ['approve', workflowId, '--as', 'bob', '--role', 'manager', '--checksum', checksum]);
    await eventually(async () => (await changeRequestStatus(suite.stack.client, workflowId)).stage === 'in-progress', 'the change to start on staging');
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    await blocker.query('COMMIT');
    const releasedAt = (await blocker.query<{ now: Date }>('SELECT clock_timestamp() AS now')).rows[0].now;
    await blocker.end();

    const done = await waitForStage(workflowId, 'complete');
    const drops = done.steps.filter((step) => step.id === 'drop-fk');
    expect(drops.map((step) => [step.environment, step.outcome])).toEqual([
      ['staging', 'applied'],
      ['production', 'applied'],
    ]);
    // The first try gave up on the lock, waited for the blocking session to finish, and went through right after.
    expect(drops[0].lockRetries).toBeGreaterThanOrEqual(1);
    const [{ committed }] = await query<{ committed: Date }>(project.urls.staging, `SELECT finished_at AS committed FROM dbchange_change_log WHERE step_id = 'drop-fk'`);
    const afterRelease = committed.getTime() - releasedAt.getTime();
    console.log(`seed 000 lock wait: committed ${afterRelease} ms after the blocking transaction ended (${drops[0].lockRetries} lock retries)`);
    expect(afterRelease).toBeGreaterThanOrEqual(0);
    expect(afterRelease).toBeLessThan(1_000);
    expect(done.approvals).toEqual([
      { role: 'eoc', by: 'alice' },
      { role: 'manager', by: 'bob' },
    ]);
    for (const url of Object.values(project.urls)) {
      expect(await query(url, `SELECT count(*)::int AS n FROM pg_constraint WHERE conname = 'fk_rails_3f92913d27'`)).toEqual([{ n: 0 }]);
      await query(url, REGISTER_MACHINE);
    }
    const status = await cli(target, ['cr', 'status', 'drop-premature-fk-3f92913d27']);
    expect(status.stdout).toMatch(/\[complete\]/);
    expect(status.stdout).toContain('rollback accepted until');
  });

  it('seed 003 from the CLI: after the key is removed and orphans appear, the rollback re-adds it NOT VALID, finds them, waits for approval, deletes them and validates', async () => {
    const { project, target } = await demoProject('cr003', ['staging', 'production'], { changeRequests: { rollbackWindow: '10m' } });
    const { checksum } = parseJsonOutput<{ checksum: string }>(await cli(target, ['cr', 'validate', SEED_003_CR, '--json']));
    await cli(target, ['cr', 'execute', SEED_003_CR]);
    const workflowId = 'cr-remove-fk-f300456b63';
    suite.workflowIds.push(workflowId);
    await cli(target, ['approve', workflowId, '--as', 'carol', '--role', 'reviewer', '--checksum', checksum]);
    await waitForStage(workflowId, 'complete');

    // Without the key, deleting chat names leaves ci_pipeline_chat_data rows pointing nowhere.
    const planted: Record<string, number> = {};
    for (const [environment, url] of Object.entries(project.urls)) {
      await query(url, environment === 'staging' ? 'DELETE FROM chat_names WHERE id = 1' : 'DELETE FROM chat_names WHERE id IN (1, 2)');
      planted[environment] = (await query<{ n: number }>(url, ORPHANS))[0].n;
    }
    expect(planted).toEqual({ staging: 1, production: 2 });

    const rollback = await cli(target, ['cr', 'rollback', 'remove-fk-f300456b63', '--as', 'alice', '--reason', 'the app does not tolerate missing chat names']);
    expect(rollback.stdout).toContain('accepted: rollback requested');
    // Newest environment first: production waits for the orphan-delete approval.
    for (const environment of ['production', 'staging']) {
      const waiting = await waitForStage(workflowId, 'waiting-approval');
      expect(waiting.environment).toBe(environment);
      expect(await query<{ n: number }>(project.urls[environment], ORPHANS)).toEqual([{ n: planted[environment] }]);
      await cli(target, ['approve', workflowId, '--as', 'alice', '--role', 'eoc', '--checksum', checksum]);
      await eventually(async () => {
        const now = await changeRequestStatus(suite.stack.client, workflowId);
        return now.environment !== environment || now.stage === 'rolled-back';
      }, `the rollback to finish on ${environment}`);
    }
    const done = await waitForStage(workflowId, 'rolled-back');
    expect(done.steps.filter((step) => step.phase === 'rollback' && step.environment === 'production').map((step) => `${step.id}:${step.outcome}`)).toEqual([
      'add-fk-not-valid:applied',
      'consistent:failed',
      'approve-orphan-delete:approved',
      'delete-orphans:applied',
      'validate-fk:applied',
      'fk-valid:passed',
    ]);
    for (const [environment, url] of Object.entries(project.urls)) {
      expect(await query(url, `SELECT convalidated FROM pg_constraint WHERE conname = 'fk_rails_f300456b63'`)).toEqual([{ convalidated: true }]);
      expect(await query(url, ORPHANS)).toEqual([{ n: 0 }]);
      expect(await query(url, 'SELECT count(*)::int AS n FROM ci_pipeline_chat_data')).toEqual([{ n: 3 - planted[environment] }]);
    }
  });

  it('a C2 change needs eoc and manager from two different people; self-approval, another checksum, a missing checksum and one person in both roles are refused', async () => {
    const { project, taskQueue } = await demoProject('crc2', ['crc2-production']);
    const file = writeChangeRequest(project, 'c2.yaml', crText({ id: 'c2-approvals', criticality: 'C2', requestedBy: 'msmiley', environments: ['crc2-production'], steps: CREATE_MARKER }));
    const checked = await readChangeRequestFile(file);
    const handle = await startChangeRequest(suite.stack.client, project.config, checked, { taskQueue });
    suite.workflowIds.push(handle.workflowId);
    await waitForStage(handle.workflowId, 'waiting-approval');
    const approve = (user: string, role: string, checksum?: string) => sendDecision(suite.stack.client, handle.workflowId, 'approve', { user, role, checksum });
    const otherChecksum = 'f'.repeat(64);

    expect(await approve('msmiley', 'eoc', checked.checksum)).toMatchObject({ accepted: false, reason: 'msmiley requested this change and cannot approve it' });
    expect(await approve('alice', 'eoc', otherChecksum)).toMatchObject({ accepted: false, reason: expect.stringContaining('is not this change') });
    expect(await approve('alice', 'eoc')).toMatchObject({ accepted: false, reason: expect.stringContaining('name the checksum you reviewed') });
    expect(await approve('dave', 'eoc', checked.checksum)).toMatchObject({ accepted: true });
    expect(await approve('dave', 'manager', checked.checksum)).toMatchObject({ accepted: false, reason: 'dave already approved as eoc; eoc and manager need different people' });
    expect(await approve('bob', 'eoc', checked.checksum)).toMatchObject({ accepted: false, reason: expect.stringContaining('bob does not hold the role eoc') });
    expect((await changeRequestStatus(suite.stack.client, handle.workflowId)).stage).toBe('waiting-approval');
    expect(await query(project.urls['crc2-production'], `SELECT to_regclass('change_markers') AS t`)).toEqual([{ t: null }]);

    expect(await approve('bob', 'manager', checked.checksum.slice(0, 12))).toMatchObject({ accepted: true });
    const done = await waitForStage(handle.workflowId, 'complete');
    expect(done.approvals).toEqual([
      { role: 'eoc', by: 'dave' },
      { role: 'manager', by: 'bob' },
    ]);
    expect(done.decisions.map((decision) => `${decision.user}:${decision.accepted}`)).toEqual(['msmiley:false', 'alice:false', 'alice:false', 'dave:true', 'dave:false', 'bob:false', 'bob:true']);
    expect(await query(project.urls['crc2-production'], 'SELECT count(*)::int AS n FROM change_markers')).toEqual([{ n: 1 }]);
  });

  it('cr status shows an accepted approval at once, who gave it in which role, while the other role is still pending', async () => {
    const { project, target } = await demoProject('crhalf', ['crhalf-production']);
    const file = writeChangeRequest(project, 'half.yaml', crText({ id: 'half-approved', criticality: 'C2', requestedBy: 'msmiley', environments: ['crhalf-production'], steps: CREATE_MARKER }));
    const { checksum } = parseJsonOutput<{ checksum: string }>(await cli(target, ['cr', 'validate', file, '--json']));
    await cli(target, ['cr', 'execute', file]);
    const workflowId = 'cr-half-approved';
    suite.workflowIds.push(workflowId);
    await waitForStage(workflowId, 'waiting-approval');

    await cli(target, ['approve', workflowId, '--as', 'alice', '--role', 'eoc', '--checksum', checksum.slice(0, 12)]);
    const waitingFor = `waiting for approval by manager (eoc approved by alice; different people, not msmiley) of checksum ${checksum.slice(0, 12)}`;
    const text = await cli(target, ['cr', 'status', 'half-approved'], 2);
    expect(text.stdout.split('\n').slice(0, 3)).toEqual([
      `${workflowId}: [waiting-approval]: ${waitingFor}`,
      `  C2 · test change half-approved · requested by msmiley · checksum ${checksum.slice(0, 12)}`,
      '  approvals: eoc by alice, manager (pending)',
    ]);
    const json = parseJsonOutput<{ status: ChangeRequestStatus }>(await cli(target, ['cr', 'status', 'half-approved', '--json'], 2));
    expect(json.status).toMatchObject({ stage: 'waiting-approval', waitingFor, approvals: [{ role: 'eoc', by: 'alice' }, { role: 'manager' }] });
    const metadata = await suite.stack.client.workflow.getHandle(workflowId).query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    expect(metadata.currentDetails).toContain(`**${waitingFor}**`);
    expect(await query(project.urls['crhalf-production'], `SELECT to_regclass('change_markers') AS t`)).toEqual([{ t: null }]);

    await cli(target, ['approve', workflowId, '--as', 'bob', '--role', 'manager', '--checksum', checksum.slice(0, 12)]);
    const done = await waitForStage(workflowId, 'complete');
    expect(done.approvals).toEqual([
      { role: 'eoc', by: 'alice' },
      { role: 'manager', by: 'bob' },
    ]);
  });

  it('a dry run leaves the database byte-for-byte unchanged and reports each step with its locks, rollback included', async () => {
    const { project, target } = await demoProject('crdry', ['staging', 'production']);
    for (const url of Object.values(project.urls)) await query(url, PREMATURE_FK);
    const before = Object.fromEntries(Object.entries(project.urls).map(([environment, url]) => [environment, dumpDatabase(url)]));

    const result = parseJsonOutput<{ workflowId: string; status: ChangeRequestStatus }>(await cli(target, ['cr', 'execute', SEED_000_CR, '--dry-run', '--json']));
    suite.workflowIds.push(result.workflowId);
    expect(result.workflowId).toBe('cr-drop-premature-fk-3f92913d27-dry-run');
    expect(result.status.stage).toBe('rehearsed');
    const staging = result.status.steps.filter((step) => step.environment === 'staging');
    expect(staging.map((step) => `${step.phase}:${step.id}:${step.outcome}`)).toEqual(['execute:drop-fk:rehearsed', 'execute:fk-gone:passed', 'rollback:readd-fk-not-valid:rehearsed']);
    expect(staging[0].locks).toEqual(expect.arrayContaining(['AccessExclusiveLock on ci_runner_machines', 'AccessExclusiveLock on ci_runners_e59bb2812d']));
    expect(staging[1].note).toBe('0 rows (expected 0)');
    for (const [environment, url] of Object.entries(project.urls)) expect(dumpDatabase(url)).toBe(before[environment]);
  });

  it('a failing step blocks with its error and notifies; resolve rollback returns the database to its state before the change', async () => {
    const webhook = await startWebhookReceiver();
    onTestFinished(() => webhook.close());
    const { project, taskQueue } = await demoProject('crfail', ['crfail-staging'], { webhookUrl: webhook.url, password: DATABASE_PASSWORD });
    const url = project.urls['crfail-staging'];
    const before = dumpDatabase(url);
    const file = writeChangeRequest(project, 'fails.yaml', crText({
      id: 'fails-on-duplicate',
      criticality: 'C4',
      requestedBy: 'msmiley',
      environments: ['crfail-staging'],
      steps: `${CREATE_MARKER}
  - id: widen-plan-limits
    sql: ALTER TABLE plan_limits ADD COLUMN web_hook_limit integer NOT NULL DEFAULT 0;
  - id: duplicate
    sql: INSERT INTO change_markers (id, note) VALUES (1, 'again');
`,
      rollback: `
  - id: narrow-plan-limits
    sql: ALTER TABLE plan_limits DROP COLUMN IF EXISTS web_hook_limit;
  - id: drop-markers
    sql: DROP TABLE IF EXISTS change_markers;
`,
    }));
    const handle = await startChangeRequest(suite.stack.client, project.config, await readChangeRequestFile(file), { taskQueue });
    suite.workflowIds.push(handle.workflowId);
    const blocked = await waitForStage(handle.workflowId, 'blocked');
    expect(blocked.lastError).toMatch(/^step duplicate \(line \d+\): ERROR 23505: duplicate key value violates unique constraint "change_markers_pkey"/);
    expect(blocked.waitingFor).toContain(`dbchange resolve ${handle.workflowId} --as USER --action retry|rollback|abort`);

    expect(await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'alice', action: 'rollback', comment: 'undo it' })).toMatchObject({ accepted: true });
    const done = await waitForStage(handle.workflowId, 'rolled-back');
    expect(done.steps.filter((step) => step.phase === 'rollback').map((step) => `${step.id}:${step.outcome}`)).toEqual(['narrow-plan-limits:applied', 'drop-markers:applied']);
    // dbchange's own ledgers are the only difference: they record what ran and what was undone.
    expect(dumpDatabase(url, { withoutLedgers: true })).toBe(before);
    // The status says rolled-back just before the last notification is posted: wait for it.
    await eventually(async () => webhook.notifications.length >= 4, 'the finished notification');
    expect(webhook.notifications.map((notification) => notification.dbchange.event)).toEqual(['started', 'blocked', 'rolling-back', 'finished']);
    expect(webhook.notifications[1].text).toContain('is blocked on crfail-staging: step duplicate');
    const leaks = [DATABASE_PASSWORD, webhook.url, 'secret-token'];
    const history = await historyText(suite.stack, handle.workflowId);
    for (const secret of leaks) {
      expect(JSON.stringify(webhook.notifications)).not.toContain(secret);
      expect(history).not.toContain(secret);
    }
  });

  it('after the rollback window closes, cr rollback says so and writes the rollback as a new change request', async () => {
    const { project, target, taskQueue } = await demoProject('crwin', ['crwin-staging', 'crwin-production'], { changeRequests: { rollbackWindow: '1s' } });
    const file = writeChangeRequest(project, 'short.yaml', crText({
      id: 'short-window',
      criticality: 'C4',
      requestedBy: 'msmiley',
      environments: ['crwin-staging', 'crwin-production'],
      steps: CREATE_MARKER,
      rollback: '\n  - id: drop-markers\n    sql: |\n      DROP TABLE IF EXISTS change_markers;\n',
    }));
    const handle = await startChangeRequest(suite.stack.client, project.config, await readChangeRequestFile(file), { taskQueue });
    suite.workflowIds.push(handle.workflowId);
    await handle.result();

    const refused = await cli(target, ['cr', 'rollback', 'short-window', '--as', 'alice', '--reason', 'too late'], 3);
    expect(refused.stderr).toMatch(/cr-short-window has ended \(complete: .*the rollback window \(1\.0s\) has closed\), so its rollback window is closed/);
    expect(refused.stderr).toContain('--write-cr rollback.yaml');

    const written = join(project.dir, 'rollback.yaml');
    await cli(target, ['cr', 'rollback', 'short-window', '--as', 'alice', '--reason', 'too late', '--write-cr', written]);
    const validated = parseJsonOutput<{ changeRequest: { id: string; requestedBy: string; environments: string[]; steps: { id: string; sql: string }[] } }>(await cli(target, ['cr', 'validate', written, '--json']));
    expect(validated.changeRequest).toMatchObject({ id: 'short-window-rollback', requestedBy: 'alice', environments: ['crwin-production', 'crwin-staging'] });
    expect(validated.changeRequest.steps.map((step) => [step.id, step.sql.trim()])).toEqual([['drop-markers', 'DROP TABLE IF EXISTS change_markers;']]);
    expect(readFileSync(written, 'utf8')).toContain('# Reason: too late');
  });

  it('refuses an invalid CR file from the CLI, naming file and line, and starts nothing', async () => {
    const { project, target } = await demoProject('crbad', ['crbad-staging']);
    const file = writeChangeRequest(project, 'bad.yaml', crText({ id: 'never-runs', criticality: 'C4', requestedBy: 'msmiley', environments: ['crbad-staging'], steps: '\n  - id: typo\n    sql: ALTR TABLE plan_limits ADD COLUMN x int;\n' }));
    for (const command of ['validate', 'execute']) {
      const result = await cli(target, ['cr', command, file], 3);
      expect(result.stderr).toBe(`${file}:8: steps.typo.sql: syntax error at or near "ALTR"\n`);
    }
    const unknown = writeChangeRequest(project, 'unknown-env.yaml', crText({ id: 'never-runs', criticality: 'C4', requestedBy: 'msmiley', environments: ['nowhere'], steps: CREATE_MARKER }));
    expect((await cli(target, ['cr', 'execute', unknown], 3)).stderr).toContain('unknown environment "nowhere"; configured: crbad-staging');
    await expect(suite.stack.client.workflow.getHandle('cr-never-runs').describe()).rejects.toThrow(/not found/i);
  });

  it('a blocked C2 change holds a pipeline on its environment until it is aborted; its search attributes say why', async () => {
    const environment = 'crhold-production';
    const project = await suite.project('crhold', {
      environments: [{ name: environment }],
      migrations: { '20240501000001_create_widgets.sql': migration('CREATE TABLE widgets (id bigint PRIMARY KEY);') },
      approvers: APPROVERS,
    });
    const taskQueue = suite.stack.newTaskQueue();
    await suite.stack.startWorker(project.config, taskQueue);
    const file = writeChangeRequest(project, 'hold.yaml', crText({ id: 'holds-production', criticality: 'C2', requestedBy: 'msmiley', environments: [environment], steps: `${CREATE_MARKER}  - id: duplicate\n    sql: INSERT INTO change_markers (id) VALUES (1);\n` }));
    const checked = await readChangeRequestFile(file);
    const change = await startChangeRequest(suite.stack.client, project.config, checked, { taskQueue });
    suite.workflowIds.push(change.workflowId);
    await waitForStage(change.workflowId, 'waiting-approval');
    await sendDecision(suite.stack.client, change.workflowId, 'approve', { user: 'dave', role: 'eoc', checksum: checked.checksum });
    await sendDecision(suite.stack.client, change.workflowId, 'approve', { user: 'bob', role: 'manager', checksum: checked.checksum });
    await waitForStage(change.workflowId, 'blocked');
    const attributes = await eventually(async () => {
      const { typedSearchAttributes } = await change.describe();
      const values = [KIND, CRITICALITY, STATUS, ENVIRONMENT].map((key) => typedSearchAttributes.get(key));
      return values[2] === 'blocked' && values;
    }, 'the blocked status in visibility');
    expect(attributes).toEqual(['cr', 'C2', 'blocked', environment]);

    const pipeline = await suite.startPipeline(project, 'carol');
    const held = await suite.waitForStage(pipeline.workflowId, 'waiting-checks');
    expect(held.waitingFor).toContain(`running critical change ${change.workflowId} on ${environment}`);
    expect(await query(project.urls[environment], `SELECT to_regclass('widgets') AS t`)).toEqual([{ t: null }]);

    await sendDecision(suite.stack.client, change.workflowId, 'resolve', { user: 'alice', action: 'abort', comment: 'wrong plan' });
    await expect(change.result()).rejects.toThrow();
    expect((await changeRequestStatus(suite.stack.client, change.workflowId)).stage).toBe('failed');
    await suite.waitForStage(pipeline.workflowId, 'complete');
  });

  it('prechecks run before each environment: a NOT VALID key over orphaned rows blocks the change before any step runs', async () => {
    const { project, taskQueue } = await demoProject('crpre', ['crpre-staging']);
    const url = project.urls['crpre-staging'];
    // ci_runners_e59bb2812d is empty (not backfilled): every machine's runner is missing from it.
    const [{ n: orphans }] = await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM ci_runner_machines');
    const file = writeChangeRequest(project, 'premature.yaml', crText({
      id: 'premature-fk',
      criticality: 'C4',
      requestedBy: 'msmiley',
      environments: ['crpre-staging'],
      steps: `\n  - id: add-fk\n    sql: ${PREMATURE_FK};\n`,
    }));
    const handle = await startChangeRequest(suite.stack.client, project.config, await readChangeRequestFile(file), { taskQueue });
    suite.workflowIds.push(handle.workflowId);
    const blocked = await waitForStage(handle.workflowId, 'blocked');
    expect(blocked.lastError).toContain(`prechecks block the change on crpre-staging: ${file}:8:`);
    expect(blocked.findings).toEqual([expect.objectContaining({ environment: 'crpre-staging', severity: 'block', check: 'foreign-key-orphans', count: orphans })]);
    expect(blocked.steps).toEqual([]);
    expect(await query(url, `SELECT count(*)::int AS n FROM pg_constraint WHERE conname = 'fk_rails_3f92913d27'`)).toEqual([{ n: 0 }]);
    await sendDecision(suite.stack.client, handle.workflowId, 'resolve', { user: 'alice', action: 'abort' });
    await expect(handle.result()).rejects.toThrow();
  });

  it('replays every change request it ran without nondeterminism', async () => {
    expect(await replayWorkflows(suite.stack, suite.workflowIds)).toBe(suite.workflowIds.length);
  });

  afterAll(async () => {
    // Changes left in their rollback window would otherwise stay open on the shared dev server.
    await Promise.all(suite.workflowIds.map((id) => suite.stack.client.workflow.getHandle(id).terminate('test file finished').catch(() => undefined)));
  });
});

const CREATE_MARKER = `
  - id: create-markers
    sql: |
      CREATE TABLE change_markers (id int PRIMARY KEY, note text);
      INSERT INTO change_markers (id, note) VALUES (1, 'first');
`;

function crText(spec: { id: string; criticality: string; requestedBy: string; environments: string[]; steps: string; rollback?: string }): string {
  return [
    `id: ${spec.id}`,
    `title: test change ${spec.id}`,
    `criticality: ${spec.criticality}`,
    `requestedBy: ${spec.requestedBy}`,
    `environments: [${spec.environments.join(', ')}]`,
    `steps:${spec.steps}`,
    ...(spec.rollback ? [`rollback:${spec.rollback}`] : []),
  ].join('\n');
}

