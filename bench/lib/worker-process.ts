// `dbchange worker` as a separate process, as in production: its RSS can be read and it can be killed.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './paths';

const BIN = join(REPO_ROOT, 'bin/dbchange.js');

export interface WorkerProcess {
  child: ChildProcess;
  /** Resident set size in MB, from /proc (Linux). */
  rssMb(): number;
}

/** Starts `dbchange worker` against `address` and resolves once it polls its task queue. */
export async function startWorkerProcess(
  address: string,
  configPath: string,
  taskQueue: string,
  workerArgs: string[] = [],
  env: Record<string, string> = {},
): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [BIN, '--config', configPath, 'worker', ...workerArgs], {
    env: { ...process.env, ...env, TEMPORAL_ADDRESS: address, DBCHANGE_TASK_QUEUE: taskQueue, DBCHANGE_LOG_LEVEL: 'ERROR' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const collect = (chunk: string) => {
      output += chunk;
      if (output.includes('dbchange worker:')) resolve();
    };
    child.stdout!.setEncoding('utf8').on('data', collect);
    child.stderr!.setEncoding('utf8').on('data', collect);
    child.on('exit', (code) => reject(new Error(`worker exited ${code}: ${output}`)));
  });
  return {
    child,
    rssMb() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
      return kb / 1024;
    },
  };
}
