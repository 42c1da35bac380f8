// The compiled `dbchange` command as separate processes: one-shot CLI runs and long-running workers.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/dbchange.js', import.meta.url));
const COMPILED_ENTRY = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

/** Where a spawned dbchange finds Temporal, its task queue and its project. */
export interface CliTarget {
  address: string;
  namespace?: string;
  taskQueue: string;
  configPath: string;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Spawned processes run the compiled code and its workflow bundle: `npm run build` (the test script does it first). */
export function assertBuilt(): void {
  if (!existsSync(COMPILED_ENTRY)) throw new Error(`${COMPILED_ENTRY} is missing: run \`npm run build\` before these tests`);
}

function cliEnv(target: CliTarget, extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: target.address, DBCHANGE_TASK_QUEUE: target.taskQueue, DBCHANGE_LOG_LEVEL: 'WARN' };
  delete env.DBCHANGE_CONFIG;
  delete env.TEMPORAL_NAMESPACE;
  if (target.namespace) env.TEMPORAL_NAMESPACE = target.namespace;
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

function spawnCli(target: CliTarget, args: string[], env: Record<string, string | undefined>): ChildProcess {
  assertBuilt();
  return spawn(process.execPath, [BIN, '--config', target.configPath, ...args], {
    cwd: REPO_ROOT,
    env: cliEnv(target, env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Runs `dbchange <args>` to the end; never throws on a non-zero exit, the caller checks `code`. */
export function runCli(target: CliTarget, args: string[], options: { env?: Record<string, string | undefined>; timeoutMs?: number } = {}): Promise<CliResult> {
  const child = spawnCli(target, args, options.env ?? {});
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`dbchange ${args.join(' ')} did not exit within ${timeoutMs}ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs `dbchange <args>` with its stdout already closed, as `| head` leaves it: what it prints hits EPIPE. */
export function runCliWithStdoutClosed(target: CliTarget, args: string[], timeoutMs = 30_000): Promise<Omit<CliResult, 'stdout'>> {
  const child = spawnCli(target, args, {});
  child.stdout!.destroy();
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`dbchange ${args.join(' ')} did not exit within ${timeoutMs}ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

/** Runs `dbchange <args> --json`-style commands and parses stdout, failing with stderr when it is not JSON. */
export function parseJsonOutput<T = Record<string, unknown>>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(`expected JSON on stdout (exit ${result.code}); stdout: ${result.stdout}; stderr: ${result.stderr}`);
  }
}

export interface WorkerProcess {
  pid: number;
  /** Everything the worker wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  exited: Promise<number | string>;
  /** Sends `signal` and waits for the process to end. */
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

/** Starts `dbchange worker` and waits until it polls its task queue (after bundling the workflows). */
export function startWorkerProcess(
  target: CliTarget,
  options: { readyTimeoutMs?: number; args?: string[]; env?: Record<string, string | undefined> } = {},
): Promise<WorkerProcess> {
  return startLongRunningCli(target, ['worker', ...(options.args ?? [])], 'dbchange worker:', options);
}

/** Starts `dbchange dashboard --port PORT` and waits until it serves. */
export function startDashboardProcess(target: CliTarget, port: number, args: string[] = []): Promise<WorkerProcess> {
  return startLongRunningCli(target, ['dashboard', '--port', String(port), ...args], 'dbchange dashboard on');
}

/** Starts a dbchange command that runs until stopped, and waits until its output says `readyText`. */
async function startLongRunningCli(
  target: CliTarget,
  args: string[],
  readyText: string,
  options: { readyTimeoutMs?: number; env?: Record<string, string | undefined> } = {},
): Promise<WorkerProcess> {
  const child = spawnCli(target, args, options.env ?? {});
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  let ended: number | string | undefined;
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => {
      ended = code ?? signal ?? 'unknown';
      resolve(ended);
    });
  });
  const worker: WorkerProcess = {
    pid: child.pid!,
    output: () => output,
    exited,
    async kill(signal = 'SIGTERM') {
      if (ended === undefined) child.kill(signal);
      return exited;
    },
  };
  const ready = await new Promise<true | string>((resolve) => {
    const timer = setTimeout(() => resolve(`did not start within ${options.readyTimeoutMs ?? 60_000}ms`), options.readyTimeoutMs ?? 60_000);
    const check = () => {
      if (!output.includes(readyText)) return;
      clearTimeout(timer);
      resolve(true);
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    void exited.then((how) => {
      clearTimeout(timer);
      resolve(`exited with ${how}`);
    });
  });
  if (ready !== true) {
    await worker.kill('SIGKILL');
    throw new Error(`dbchange ${args[0]} process ${child.pid} ${ready}: ${output}`);
  }
  return worker;
}

/** Stops worker processes that are still running (graceful first, then SIGKILL after `graceMs`). */
export async function stopWorkerProcesses(workers: WorkerProcess[], graceMs = 15_000): Promise<void> {
  await Promise.all(
    workers.map(async (worker) => {
      const timer = setTimeout(() => void worker.kill('SIGKILL'), graceMs);
      try {
        await worker.kill('SIGTERM');
      } finally {
        clearTimeout(timer);
      }
    }),
  );
}
