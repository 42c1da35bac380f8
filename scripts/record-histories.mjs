// Records histories of in-flight workflows from a release, for test/fixtures/histories (see
// test/integration/replay-compat.test.ts). Not part of the test command: it runs inside a worktree of the
// release, with that release's test helpers, on the real stack:
//   git worktree add /tmp/old-dbchange <release-commit>
//   ln -s "$PWD/node_modules" /tmp/old-dbchange/node_modules; ln -s "$PWD/.tools" /tmp/old-dbchange/.tools
//   cp scripts/record-histories.mjs /tmp/old-dbchange/test/integration/record-histories.test.ts
//   (cd /tmp/old-dbchange && npm run --silent build && HISTORIES_OUT="$PWD/test/fixtures/histories" npx vitest run test/integration/record-histories.test.ts)
//   git worktree remove --force /tmp/old-dbchange
// Plain JavaScript so it runs as a .ts test there and lints here without a project.
/* global process, Buffer, console, setTimeout */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { describe, expect, it } from 'vitest';
import { controlBackfill, readBackfillStatus, startBackfill } from '../../cli/backfill-client';
import { changeRequestStatus, requestRollback, startChangeRequest } from '../../cli/change-client';
import { sendDecision } from '../../cli/pipeline-client';
import { readChangeRequestFile } from '../../core/change-request-file';
import { loadDemoSchema, SEED_003_CR, writeChangeRequest } from '../helpers/change-requests';
import { query } from '../helpers/postgres';
import { migration } from '../helpers/project';
import { eventually } from '../helpers/stack';
import { useSuite } from '../helpers/suite';

const OUT = process.env.HISTORIES_OUT;
/** Put into every database URL: the check below proves neither it nor a URL reaches a history. */
const PASSWORD = 'fixture-db-password-5c1e';
const APPROVERS = { alice: ['eoc', 'release-manager'], bob: ['manager'], carol: ['reviewer', 'release-manager'], dave: ['eoc', 'manager'] };
const MIGRATIONS = {
  '20240401000001_create_plan_limits.sql': migration('CREATE TABLE plan_limits (id bigint PRIMARY KEY);'),
  '20240401000002_add_plan_limits_name.sql': migration('ALTER TABLE plan_limits ADD COLUMN name text;'),
  '20240401000003_index_plan_limits_name.sql': migration('CREATE INDEX CONCURRENTLY idx_plan_limits_name ON plan_limits (name);', { transaction: false }),
};

describe('record histories of in-flight workflows', () => {
  const suite = useSuite();

  async function save(name, workflowId) {
    if (!OUT) throw new Error('set HISTORIES_OUT to the fixtures folder');
    const history = await suite.stack.client.workflow.getHandle(workflowId).fetchHistory();
    const json = historyToJSON(history);
    // Payloads are base64 in the JSON: search them decoded too.
    const payloads = [...json.matchAll(/"data":\s*"([A-Za-z0-9+/=]+)"/g)].map((match) => Buffer.from(match[1], 'base64').toString('utf8'));
    for (const text of [json, ...payloads]) {
      if (/postgres(ql)?:\/\//.test(text) || text.includes(PASSWORD)) throw new Error(`${name}: a database URL or password is in the history`);
    }
    mkdirSync(OUT, { recursive: true });
    writeFileSync(join(OUT, `${name}.json`), `${JSON.stringify(JSON.parse(json), null, 2)}\n`);
    console.log(`${name}: ${workflowId}, ${history.events?.length} events, ${json.length} bytes`);
  }

  async function atApproval(prefix) {
    const project = await suite.project(prefix, {
      environments: [{ name: `${prefix}-staging` }, { name: `${prefix}-production`, approvalRoles: ['release-manager'] }],
      migrations: MIGRATIONS,
      password: PASSWORD,
    });
    const handle = await suite.startPipeline(project, 'dave');
    const waiting = await suite.waitForStage(handle.workflowId, 'waiting-approval');
    expect(waiting.environment).toBe(`${prefix}-production`);
    return { project, handle };
  }

  it('pipeline-waiting-approval', async () => {
    const { project, handle } = await atApproval('rwait');
    expect(await query(project.urls['rwait-staging'], 'SELECT count(*)::int AS n FROM schema_migrations')).toEqual([{ n: 3 }]);
    await save('pipeline-waiting-approval', handle.workflowId);
  });

  it('pipeline-approved-complete', async () => {
    const { handle } = await atApproval('rdone');
    const answer = await sendDecision(suite.stack.client, handle.workflowId, 'approve', { user: 'alice', role: 'release-manager', comment: 'QA green' });
    expect(answer.accepted).toBe(true);
    expect((await handle.result()).stage).toBe('complete');
    await save('pipeline-approved-complete', handle.workflowId);
  });

  it('pipeline-blocked', async () => {
    const project = await suite.project('rblock', {
      environments: [{ name: 'rblock-staging' }, { name: 'rblock-production', approvalRoles: ['release-manager'] }],
      migrations: {
        '20240501000001_create_audit_events.sql': migration('CREATE TABLE audit_events (id bigint PRIMARY KEY);'),
        '20240501000002_index_missing_table.sql': migration('CREATE INDEX idx_missing_owner ON missing_table (owner_id);'),
      },
      password: PASSWORD,
    });
    const handle = await suite.startPipeline(project, 'dave');
    const blocked = await suite.waitForStage(handle.workflowId, 'blocked');
    expect(blocked.environment).toBe('rblock-staging');
    expect(blocked.lastError).toContain('42P01');
    await save('pipeline-blocked', handle.workflowId);
  });

  /** Seed 003 (C3, one reviewer) under an id of its own, on staging and production with the example app's schema. */
  async function c3Change(prefix) {
    const project = await suite.project(prefix, {
      environments: [{ name: 'staging' }, { name: 'production' }],
      migrations: {},
      approvers: APPROVERS,
      changeRequests: { rollbackWindow: '24h' },
      password: PASSWORD,
    });
    for (const url of Object.values(project.urls)) await loadDemoSchema(url);
    const taskQueue = suite.stack.newTaskQueue();
    await suite.stack.startWorker(project.config, taskQueue);
    const text = readFileSync(SEED_003_CR, 'utf8').replace(/^id: remove-fk-f300456b63$/m, `id: ${prefix}-remove-fk-f300456b63`);
    const checked = await readChangeRequestFile(writeChangeRequest(project, `${prefix}.yaml`, text));
    const handle = await startChangeRequest(suite.stack.client, project.config, checked, { taskQueue });
    return { handle, checked };
  }

  function waitForChange(workflowId, stage) {
    return eventually(async () => {
      const snapshot = await changeRequestStatus(suite.stack.client, workflowId);
      return snapshot.stage === stage && snapshot;
    }, `${workflowId} to reach ${stage}`, 60_000);
  }

  it('cr-waiting-approval', async () => {
    const { handle } = await c3Change('crwait');
    await waitForChange(handle.workflowId, 'waiting-approval');
    await save('cr-waiting-approval', handle.workflowId);
  });

  it('cr-rollback-window', async () => {
    const { handle, checked } = await c3Change('crwin');
    await waitForChange(handle.workflowId, 'waiting-approval');
    const answer = await sendDecision(suite.stack.client, handle.workflowId, 'approve', { user: 'carol', role: 'reviewer', checksum: checked.checksum });
    expect(answer.accepted).toBe(true);
    const done = await waitForChange(handle.workflowId, 'complete');
    expect(done.steps.filter((step) => step.id === 'drop-fk').map((step) => step.outcome)).toEqual(['applied', 'applied']);
    // Let the workflow task that parks it in the rollback window complete.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await save('cr-rollback-window', handle.workflowId);
  });

  /** alice's public key, a new one each run: the signature policy needs keys, though nothing below is signed. */
  function aliceKey() {
    const keyFile = join(mkdtempSync(join(tmpdir(), 'dbchange-fixture-key-')), 'alice');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'alice@fixture', '-f', keyFile]);
    return readFileSync(`${keyFile}.pub`, 'utf8').trim();
  }

  // Under approvals.signatures: required, an unsigned `cr rollback` that the release accepted (ff732be and earlier
  // did not check a rollback's signature): it must replay as it ran. Recorded from ff732be as ff732be-cr-unsigned-rollback.
  it('cr-unsigned-rollback', async () => {
    const project = await suite.project('crunsigned', {
      environments: [{ name: 'staging' }],
      migrations: {},
      approversYaml: ['approvers:', `  alice: { roles: [eoc, release-manager], keys: ["${aliceKey()}"] }`, 'approvals: { signatures: required }'],
      changeRequests: { rollbackWindow: '24h' },
      password: PASSWORD,
    });
    const taskQueue = suite.stack.newTaskQueue();
    await suite.stack.startWorker(project.config, taskQueue);
    const text = ['id: unsigned-rollback', 'title: a change rolled back unsigned', 'criticality: C4', 'requestedBy: msmiley', 'environments: [staging]', 'steps:', '  - id: add-marker', '    sql: CREATE TABLE rollback_markers (id int)', 'rollback:', '  - id: drop-marker', '    sql: DROP TABLE rollback_markers', ''].join('\n');
    const checked = await readChangeRequestFile(writeChangeRequest(project, 'unsigned-rollback.yaml', text));
    const handle = await startChangeRequest(suite.stack.client, project.config, checked, { taskQueue });
    await waitForChange(handle.workflowId, 'complete');
    const answer = await requestRollback(suite.stack.client, handle.workflowId, { user: 'alice', reason: 'not needed after all' });
    expect(answer.accepted).toBe(true);
    await waitForChange(handle.workflowId, 'rolled-back');
    await save('cr-unsigned-rollback', handle.workflowId);
  });

  // A backfill under approvals.signatures: required, paused, resumed and cancelled by unsigned decisions that the
  // release accepted (ff732be did not check a backfill's signatures). Recorded from ff732be as ff732be-backfill-unsigned-controls.
  it('backfill-unsigned-controls', async () => {
    const project = await suite.project('bfunsigned', {
      environments: [{ name: 'staging' }],
      migrations: {},
      backfills: { '20241104120000_fixture_items.yaml': ['table: fixture_items', 'key: id', 'batch: UPDATE fixture_items SET touched = touched + 1 WHERE id >= :start AND id < :end', 'maxBatchSize: 50', 'pauseWhen:', '  query: SELECT paused FROM fixture_flags', ''].join('\n') },
      approversYaml: ['approvers:', `  alice: { roles: [release-manager], keys: ["${aliceKey()}"] }`, 'approvals: { signatures: required }'],
      password: PASSWORD,
    });
    const url = project.urls.staging;
    await query(url, 'CREATE TABLE fixture_items (id bigint PRIMARY KEY, touched int NOT NULL DEFAULT 0)');
    await query(url, 'INSERT INTO fixture_items (id) SELECT generate_series(1, 200)');
    await query(url, 'CREATE TABLE fixture_flags AS SELECT true AS paused');
    const taskQueue = suite.stack.newTaskQueue();
    await suite.stack.startWorker(project.config, taskQueue);
    const workflowId = await startBackfill(suite.stack.client, project.config, { name: 'fixture_items', environment: 'staging', requestedBy: 'dave', taskQueue });
    await eventually(async () => (await readBackfillStatus(suite.stack.client, 'staging', 'fixture_items')).paused?.by === 'condition', 'a pause by its condition');
    for (const kind of ['pause', 'resume', 'cancel']) expect(await controlBackfill(suite.stack.client, 'staging', 'fixture_items', kind, { user: 'alice' })).toMatchObject({ accepted: true });
    expect((await suite.stack.client.workflow.getHandle(workflowId).result()).state).toBe('cancelled');
    await save('backfill-unsigned-controls', workflowId);
  });
});
