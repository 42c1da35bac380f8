// A change request's SQL step on real PostgreSQL: recorded with its effect in one transaction, so a retry of a
// step whose acknowledgement was lost (a worker crash after COMMIT) finds the record and changes nothing.
import { MockActivityEnvironment } from '@temporalio/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSqlStep, type StepRun } from '../../activities/change-steps';
import { parseChangeRequest, type SqlStep } from '../../core/change-request';
import { createDatabase, query } from '../helpers/postgres';

const SETTINGS = { lockTimeoutMs: 200, statementTimeoutMs: 10_000, maxWaitMs: 60_000 };
const CR = parseChangeRequest(
  `id: ledger-test
title: counts once
criticality: C4
requestedBy: ann
environments: [staging]
steps:
  - id: bump
    sql: UPDATE counters SET n = n + 1;
  - id: bump-outside
    transaction: false
    sql: UPDATE counters SET n = n + 100;
`,
  'ledger.yaml',
);

describe('change request SQL steps', () => {
  let database: Awaited<ReturnType<typeof createDatabase>>;
  let pool: pg.Pool;
  beforeAll(async () => {
    database = await createDatabase('crledger');
    await query(database.url, 'CREATE TABLE counters (n int NOT NULL); INSERT INTO counters VALUES (0)');
    pool = new pg.Pool({ connectionString: database.url, max: 4 });
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  const run = (phase: StepRun['phase'], runId = 'run-1'): StepRun => ({ changeId: 'ledger-test', checksum: 'c'.repeat(64), environment: 'staging', phase, workflowId: 'cr-ledger-test', runId });
  const apply = (step: SqlStep, stepRun: StepRun, attempt = 1) => {
    const environment = new MockActivityEnvironment({ attempt });
    const control = { stop: environment.context.cancellationSignal, statementTimeoutRetries: 1, onWaiting: async () => undefined };
    return environment.run(runSqlStep, pool, stepRun, step, SETTINGS, control);
  };

  it('applies a step once per run and phase; a retried attempt finds it recorded', async () => {
    const bump = CR.steps[0] as SqlStep;
    expect(await apply(bump, run('execute'))).toMatchObject({ outcome: 'applied', attempt: 1, lockRetries: 0 });
    expect(await apply(bump, run('execute'), 2)).toMatchObject({ outcome: 'already-applied', attempt: 2 });
    expect(await query(database.url, 'SELECT n FROM counters')).toEqual([{ n: 1 }]);
    // The same step in another run (a new execution of the CR) is a new change.
    expect(await apply(bump, run('execute', 'run-2'))).toMatchObject({ outcome: 'applied' });
    expect(await query(database.url, 'SELECT n FROM counters')).toEqual([{ n: 2 }]);
    expect(await query(database.url, `SELECT run_id, phase, step_id, attempts FROM dbchange_change_log ORDER BY id`)).toEqual([
      { run_id: 'run-1', phase: 'execute', step_id: 'bump', attempts: 1 },
      { run_id: 'run-2', phase: 'execute', step_id: 'bump', attempts: 1 },
    ]);
  });

  it('records a step that runs without a transaction after it ran, so a finished one is not run again', async () => {
    const outside = CR.steps[1] as SqlStep;
    expect(await apply(outside, run('execute', 'run-3'))).toMatchObject({ outcome: 'applied' });
    expect(await apply(outside, run('execute', 'run-3'), 2)).toMatchObject({ outcome: 'already-applied' });
    expect(await query(database.url, 'SELECT n FROM counters')).toEqual([{ n: 102 }]);
  });

  it('names the step, its line and the SQLSTATE of a permanent error, and does not record it', async () => {
    const broken = { ...(CR.steps[0] as SqlStep), id: 'broken', sql: 'UPDATE counters SET n = n / 0;' };
    await expect(apply(broken, run('execute', 'run-4'))).rejects.toMatchObject({
      type: 'ChangeStepFailed',
      nonRetryable: true,
      message: 'step broken (line 8): ERROR 22012: division by zero',
    });
    expect(await query(database.url, `SELECT count(*)::int AS n FROM dbchange_change_log WHERE run_id = 'run-4'`)).toEqual([{ n: 0 }]);
  });
});
