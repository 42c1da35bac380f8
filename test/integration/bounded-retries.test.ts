// Retries that stop: a statement that hits statement_timeout, and a connection lost again and again, are tried a
// bounded number of times, each failed try shown in the status, and then the pipeline blocks for a person.
import { describe, expect, it } from 'vitest';
import { pipelineStatus } from '../../cli/pipeline-client';
import type { PipelineStatus } from '../../core/pipeline';
import { query } from '../helpers/postgres';
import { migration } from '../helpers/project';
import { replayWorkflows } from '../helpers/stack';
import { useSuite } from '../helpers/suite';

const SLOW = '20240901000001_slow_statement.sql';
const SELF_TERMINATING = '20240901000002_lose_the_connection.sql';

describe('bounded, visible retries', () => {
  const suite = useSuite();

  /** Every distinct status the pipeline shows until it reaches `stage`, polled quickly so short retry waits are seen. */
  async function watchUntil(workflowId: string, stage: PipelineStatus['stage'], timeoutMs = 60_000): Promise<PipelineStatus[]> {
    const seen: PipelineStatus[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const snapshot = await pipelineStatus(suite.stack.client, workflowId);
      if (seen.at(-1)?.waitingFor !== snapshot.waitingFor || seen.at(-1)?.stage !== snapshot.stage) seen.push(snapshot);
      if (snapshot.stage === stage) return seen;
      if (Date.now() > deadline) throw new Error(`${workflowId} never reached ${stage}; saw ${seen.map((s) => `${s.stage}: ${s.waitingFor}`).join(' | ')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it('retries a statement that hit statement_timeout once, shows the try and the next one, then blocks with advice', async () => {
    const project = await suite.project('stmttimeout', {
      environments: [{ name: 'timeout-env' }],
      statementTimeout: '1s',
      migrations: { [SLOW]: migration('SELECT 1;\nSELECT pg_sleep(5);') },
    });
    const started = Date.now();
    const handle = await suite.startPipeline(project);
    const seen = await watchUntil(handle.workflowId, 'blocked');
    const blockedAfterMs = Date.now() - started;

    const retrying = seen.find((snapshot) => snapshot.retry);
    expect(retrying?.retry).toMatchObject({ attempt: 1, maxAttempts: 2 });
    expect(retrying?.retry?.error).toContain(`${SLOW}:3: ERROR 57014: canceling statement due to statement timeout (statement_timeout 1.0s)`);
    expect(retrying?.waitingFor).toMatch(/^try 1 of 2 failed: .*57014.*; next try at \d\d:\d\d:\d\d UTC$/);

    const blocked = seen.at(-1)!;
    expect(blocked.lastError).toContain(`${SLOW}:3: ERROR 57014: canceling statement due to statement timeout (statement_timeout 1.0s)`);
    expect(blocked.lastError).toContain('on 2 tries (lockRetry.statementTimeoutRetries allows 1 retry)');
    expect(blocked.lastError).toContain('-- dbchange:statement-timeout 2h');
    // Two tries of 1 s each and a pause between them; well short of the minutes it took to notice before.
    expect(blockedAfterMs).toBeLessThan(20_000);
    console.info(`statement timeout: blocked ${blockedAfterMs} ms after the start: ${blocked.waitingFor}`);
    expect(await query(project.urls['timeout-env'], 'SELECT outcome, error FROM dbchange_migration_log ORDER BY id')).toEqual([
      { outcome: 'failed', error: expect.stringContaining('57014') },
      { outcome: 'failed', error: expect.stringContaining('57014') },
    ]);
  });

  it('gives a file more time with -- dbchange:statement-timeout', async () => {
    const project = await suite.project('stmtdirective', {
      environments: [{ name: 'directive-env' }],
      statementTimeout: '1s',
      migrations: { [SLOW]: migration('-- dbchange:statement-timeout 10s\nSELECT pg_sleep(2);') },
    });
    const handle = await suite.startPipeline(project);
    const result = await handle.result();
    expect(result.stage).toBe('complete');
    expect(result.results[0].migrations.map((outcome) => outcome.outcome)).toEqual(['applied']);
  });

  it('retries a lost connection up to lockRetry.maxAttempts, telling the status each time, then blocks', async () => {
    const project = await suite.project('maxattempts', {
      environments: [{ name: 'attempts-env' }],
      maxAttempts: 3,
      migrations: { [SELF_TERMINATING]: migration('SELECT pg_terminate_backend(pg_backend_pid());') },
    });
    const handle = await suite.startPipeline(project);
    const seen = await watchUntil(handle.workflowId, 'blocked');
    const blocked = seen.at(-1)!;
    expect(blocked.lastError).toMatch(/57P01 .*terminating connection due to administrator command.*\(gave up after 3 tries: lockRetry\.maxAttempts\)$/);

    // Each failed try that is tried again is reported to the workflow (so the status and the UI show it).
    const history = await handle.fetchHistory();
    const reports = (history.events ?? []).filter((event) => event.workflowExecutionSignaledEventAttributes?.signalName === 'stepProgress');
    expect(reports).toHaveLength(2);
    expect(seen.some((snapshot) => /^try [12] of 3 failed: .*57P01/.test(snapshot.waitingFor ?? ''))).toBe(true);
  });

  it('replays every history it produced without nondeterminism', async () => {
    expect(await replayWorkflows(suite.stack, suite.workflowIds)).toBe(suite.workflowIds.length);
  });
});
