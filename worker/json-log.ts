// The worker's log: one JSON object per line on stderr, so log shippers need no parser; workflow id and environment are fields.
import type { LogEntry } from '@temporalio/worker';

export function formatLogLine(entry: LogEntry): string {
  const { workflowId, environment, ...rest } = entry.meta ?? {};
  const line = {
    time: new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString(),
    level: entry.level,
    message: entry.message,
    ...(workflowId !== undefined ? { workflowId } : {}),
    ...(environment !== undefined ? { environment } : {}),
    ...rest,
  };
  return JSON.stringify(line, (_key, value: unknown) => {
    if (typeof value === 'bigint') return value.toString();
    if (value instanceof Error) return { name: value.name, message: value.message };
    return value;
  });
}

export function writeJsonLogLine(entry: LogEntry): void {
  process.stderr.write(`${formatLogLine(entry)}\n`);
}
