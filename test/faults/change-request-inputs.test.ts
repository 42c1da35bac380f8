import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { changeRequestStatus, startChangeRequest } from '../../cli/change-client';
import { CliError, EXIT } from '../../cli/output';
import { sendDecision } from '../../cli/pipeline-client';
import { checkChangeRequestText } from '../../core/change-request-file';
import { assertBuilt, runCli, type CliTarget } from '../helpers/processes';
import { query } from '../helpers/postgres';
import { eventually, replayWorkflows } from '../helpers/stack';
import { useSuite } from '../helpers/suite';
import { expectNoSecretsInHistories } from './fault-helpers';

const ENVIRONMENT = 'crin-staging';
const PASSWORD = 'crin-db-password-0b7c55e2';
const ONE_MB = 'x'.repeat(1024 * 1024);
const GOOD_CR = [
  'id: crin-parked',
  'title: parked at its approval',
  'criticality: C3',
  'requestedBy: requester',
  `environments: [${ENVIRONMENT}]`,
  'steps:',
  '  - id: create-marker',
  '    sql: CREATE TABLE crin_markers (id int);',
  '',
].join('\n');
const HEADER = ['id: never-runs', 'title: t', 'criticality: C3', 'requestedBy: requester', `environments: [${ENVIRONMENT}]`];

/** Broken CR files, and the one line each must be refused with (after the file name). */
const INVALID_FILES: { name: string; text: string; error: string }[] = [
  { name: 'bad-criticality.yaml', text: [...HEADER.slice(0, 2), 'criticality: C9', ...HEADER.slice(3), 'steps:', '  - id: one', '    sql: SELECT 1;'].join('\n'), error: ':3: criticality: one of C1, C2, C3, C4' },
  { name: 'unknown-key.yaml', text: [...HEADER, 'colour: blue', 'steps:', '  - id: one', '    sql: SELECT 1;'].join('\n'), error: ':6: colour: unknown key (check its spelling)' },
  { name: 'duplicate-step.yaml', text: [...HEADER, 'steps:', '  - id: one', '    sql: SELECT 1;', '  - id: one', '    sql: SELECT 2;'].join('\n'), error: ':9: steps.one: duplicate step id "one" (first at line 7)' },
  { name: 'two-kinds.yaml', text: [...HEADER, 'steps:', '  - id: one', '    sql: SELECT 1;', '    check: SELECT 1'].join('\n'), error: ':7: steps.0: a step has exactly one of sql, check or approval (found sql and check)' },
  { name: 'no-steps.yaml', text: [...HEADER, 'steps: []'].join('\n'), error: ':6: steps: list at least one step' },
  { name: 'not-yaml.yaml', text: 'id: [unclosed\n', error: ':2: Flow sequence in block collection must be sufficiently indented and end with a ]' },
];

describe('change requests under bad input', () => {
  const suite = useSuite();

  it('refuses invalid CR files with file, line and field, and malformed approvals (recording those small enough to record), leaving a parked change otherwise as it was', { timeout: 120_000 }, async () => {
    assertBuilt();
    const project = await suite.project('crin', {
      environments: [{ name: ENVIRONMENT }],
      migrations: {},
      approvers: { reviewer: ['reviewer'], requester: ['reviewer'] },
      password: PASSWORD,
    });
    const taskQueue = suite.stack.newTaskQueue();
    await suite.stack.startWorker(project.config, taskQueue);
    const target: CliTarget = { address: suite.stack.address, taskQueue, configPath: project.configPath };
    const file = await checkChangeRequestText(GOOD_CR, join(project.dir, 'parked.yaml'));
    const handle = await startChangeRequest(suite.stack.client, project.config, file, { taskQueue });
    suite.workflowIds.push(handle.workflowId);
    const before = await eventually(async () => {
      const snapshot = await changeRequestStatus(suite.stack.client, handle.workflowId);
      return snapshot.stage === 'waiting-approval' && snapshot;
    }, 'the change to park at its approval');

    for (const invalid of INVALID_FILES) {
      const path = join(project.dir, invalid.name);
      writeFileSync(path, invalid.text);
      for (const command of ['validate', 'execute']) {
        const result = await runCli(target, ['cr', command, path], { timeoutMs: 60_000 });
        expect(result.code, `${command} ${invalid.name}`).toBe(EXIT.refused);
        expect(result.stdout).toBe('');
        expect(result.stderr).toBe(`${path}${invalid.error}\n`);
      }
    }

    const approve = (payload: unknown) => sendDecision(suite.stack.client, handle.workflowId, 'approve', payload as never).catch((error: unknown) => error);
    // Answered by the workflow and recorded as refusals.
    const malformed: [unknown, string, string][] = [
      [{ user: 42, role: 'reviewer', checksum: file.checksum }, '(missing)', '"user" must be a string'],
      [{ role: 'reviewer', checksum: file.checksum }, '(missing)', '"user" is required'],
      [{ user: 'reviewer', role: 'reviewer', checksum: 12 }, 'reviewer', '"checksum" must be a string'],
    ];
    for (const [payload, , reason] of malformed) expect(await approve(payload)).toEqual({ accepted: false, reason });
    // 1 MB strings are refused before they enter history, and not recorded.
    for (const payload of [
      { user: ONE_MB, role: 'reviewer', checksum: file.checksum },
      { user: 'reviewer', role: 'reviewer', checksum: file.checksum, comment: ONE_MB },
    ]) {
      const refusal = await approve(payload);
      expect(refusal).toBeInstanceOf(CliError);
      expect((refusal as CliError).exitCode).toBe(EXIT.refused);
      expect((refusal as CliError).message).toBe(`approve refused by ${handle.workflowId}: the payload is 1025 KB as JSON; a decision may be at most 8 KB (each text at most 2000 characters)`);
    }

    const after = await changeRequestStatus(suite.stack.client, handle.workflowId);
    expect({ ...after, decisions: [] }).toEqual({ ...before, decisions: [] });
    expect(after.decisions.map((decision) => [decision.user, decision.accepted, decision.reason])).toEqual(malformed.map(([, user, reason]) => [user, false, reason]));
    expect(await query(project.urls[ENVIRONMENT], `SELECT to_regclass('crin_markers') AS t`)).toEqual([{ t: null }]);
    for (const never of ['cr-never-runs', 'cr-never-runs-dry-run']) await expect(suite.stack.client.workflow.getHandle(never).describe()).rejects.toThrow(/not found/i);

    expect(await approve({ user: 'reviewer', role: 'reviewer', checksum: file.checksum })).toMatchObject({ accepted: true });
    const done = await eventually(async () => {
      const snapshot = await changeRequestStatus(suite.stack.client, handle.workflowId);
      return snapshot.stage === 'complete' && snapshot;
    }, 'the approved change to complete');
    expect(done.approvals).toEqual([{ role: 'reviewer', by: 'reviewer' }]);
    expect(await query(project.urls[ENVIRONMENT], `SELECT to_regclass('crin_markers')::text AS t`)).toEqual([{ t: 'crin_markers' }]);
  });

  it('keeps the database password out of the history it produced', async () => {
    expect(await expectNoSecretsInHistories(suite.stack, suite.workflowIds, [PASSWORD])).toBe(1);
  });

  it('replays the change request it ran without nondeterminism', async () => {
    expect(await replayWorkflows(suite.stack, suite.workflowIds)).toBe(1);
  });
});
