// Runs an environment's QA command: heartbeating, bounded by its timeout, keeping the tail of its output.
import { spawn } from 'node:child_process';
import { dirname } from 'node:path';
import { Context } from '@temporalio/activity';
import type { QaResult } from '../core/pipeline';

const OUTPUT_TAIL_CHARS = 4_000;
const HEARTBEAT_EVERY_MS = 2_000;
const KILL_GRACE_MS = 5_000;

export async function runQaCommand(command: string, timeoutMs: number, environment: string, configFile: string): Promise<QaResult> {
  const started = Date.now();
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  };
  // A process group of its own, so a timeout or cancellation stops everything the command started.
  const child = spawn(command, {
    shell: true,
    detached: true,
    cwd: dirname(configFile),
    env: { ...process.env, DBCHANGE_ENVIRONMENT: environment },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);

  let timedOut = false;
  const stop = () => {
    if (child.pid === undefined || child.exitCode !== null) return;
    process.kill(-child.pid, 'SIGTERM');
    setTimeout(() => child.exitCode === null && child.pid && process.kill(-child.pid, 'SIGKILL'), KILL_GRACE_MS).unref();
  };
  const timer = setTimeout(() => {
    timedOut = true;
    stop();
  }, timeoutMs);
  const heartbeat = setInterval(() => Context.current().heartbeat({ environment, elapsedMs: Date.now() - started }), HEARTBEAT_EVERY_MS);
  const onCancel = () => stop();
  Context.current().cancellationSignal.addEventListener('abort', onCancel);

  const exitCode = await new Promise<number | null>((resolve) => {
    child.on('error', (error) => {
      keep(Buffer.from(`\n${error.message}\n`));
      resolve(null);
    });
    child.on('close', (code) => resolve(code));
  });
  clearTimeout(timer);
  clearInterval(heartbeat);
  Context.current().cancellationSignal.removeEventListener('abort', onCancel);
  return { command, exitCode, passed: exitCode === 0 && !timedOut, timedOut, durationMs: Date.now() - started, outputTail: tail };
}
