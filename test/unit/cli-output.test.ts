import { describe, expect, it } from 'vitest';
import { createLiveLine } from '../../cli/output';
import { formatLogLine } from '../../worker/json-log';

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  const stream = { isTTY, columns: 40, write: (chunk: string) => writes.push(chunk) > 0 } as unknown as NodeJS.WriteStream;
  return { stream, writes };
}

describe('progress on stderr', () => {
  it('rewrites one line in place on a terminal, cut to its width, and ends it with a newline', () => {
    const { stream, writes } = fakeStream(true);
    const line = createLiveLine(stream);
    line.update('[applying] staging, migration 1 of 2');
    line.update('[applying] staging, migration 1 of 2');
    line.update(`[waiting-approval] production: ${'x'.repeat(60)}`);
    line.done();
    expect(writes).toEqual(['\r\x1b[2K[applying] staging, migration 1 of 2', `\r\x1b[2K${`[waiting-approval] production: ${'x'.repeat(60)}`.slice(0, 39)}`, '\n']);
  });

  it('prints plain lines, once per change, when stderr is not a terminal', () => {
    const { stream, writes } = fakeStream(false);
    const line = createLiveLine(stream);
    line.update('[applying] staging');
    line.update('[applying] staging');
    line.update('[complete] complete on staging');
    line.done();
    expect(writes).toEqual(['[applying] staging\n', '[complete] complete on staging\n']);
  });
});

describe('worker log lines', () => {
  it('are one JSON object: time, level, message, then workflow id and environment, then the rest', () => {
    const text = formatLogLine({
      level: 'INFO',
      message: 'waiting for approval by release-manager before production',
      timestampNanos: 1_700_000_000_123_456_789n,
      meta: { runId: 'r1', environment: 'production', workflowId: 'pdm-staging+production', attempt: 2n, error: new Error('boom') },
    });
    expect(text).not.toContain('\n');
    expect(JSON.parse(text)).toEqual({
      time: '2023-11-14T22:13:20.123Z',
      level: 'INFO',
      message: 'waiting for approval by release-manager before production',
      workflowId: 'pdm-staging+production',
      environment: 'production',
      runId: 'r1',
      attempt: '2',
      error: { name: 'Error', message: 'boom' },
    });
    expect(Object.keys(JSON.parse(text))).toEqual(['time', 'level', 'message', 'workflowId', 'environment', 'runId', 'attempt', 'error']);
  });
});
