// Starts the Temporal CLI's dev server (with its Web UI and dbchange's search attributes) and waits until it answers.
import { spawn, type ChildProcess } from 'node:child_process';
import { Connection } from '@temporalio/client';
import { devServerSearchAttributeArgs } from '../core/search-attributes';
import { temporalCliPath } from './temporal-cli';

export interface DevServerOptions {
  port?: number;
  uiPort?: number;
  /** Omit for an in-memory server; a file keeps workflows across restarts. */
  dbFilename?: string;
  /** The frontend's HTTP API, for chat tooling that sends plain HTTP. */
  httpPort?: number;
  quiet?: boolean;
  /** false starts a bare server, as a fresh cluster would be before `dbchange setup`. */
  searchAttributes?: boolean;
  /** Server dynamic config (`--dynamic-config-value key=value`), e.g. FAST_DISPATCH. */
  dynamicConfig?: Record<string, string | number | boolean>;
}

/**
 * The server hands a scheduled task to a waiting worker only when its per-shard transfer queue is read, at most
 * `history.transferProcessorMaxPollRPS` (default 20) times a second; the dev server has one shard. A workflow that
 * runs activities one after another, as a pipeline does, then waits about 40 ms for each workflow task and each
 * activity (bench/README.md measures it). These settings let the queue be read as soon as a task is written, and
 * let an activity go straight to the worker that scheduled it.
 */
export const FAST_DISPATCH: Record<string, number | boolean> = {
  'history.transferProcessorMaxPollRPS': 1000,
  'system.enableActivityEagerExecution': true,
};

export interface DevServer {
  address: string;
  uiUrl: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const port = options.port ?? 7233;
  const uiPort = options.uiPort ?? 8233;
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--ui-port', String(uiPort), '--log-level', 'error'];
  if (options.dbFilename) args.push('--db-filename', options.dbFilename);
  if (options.httpPort) args.push('--http-port', String(options.httpPort));
  if (options.searchAttributes !== false) args.push(...devServerSearchAttributeArgs());
  for (const [key, value] of Object.entries(options.dynamicConfig ?? {})) args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  const child = spawn(temporalCliPath(), args, { stdio: ['ignore', options.quiet ? 'ignore' : 'inherit', 'inherit'] });
  const address = `127.0.0.1:${port}`;
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`temporal dev server exited with code ${code}; is port ${port} or ${uiPort} already in use?`))),
  );
  await Promise.race([waitUntilServing(address), exited]);
  return {
    address,
    uiUrl: `http://localhost:${uiPort}`,
    process: child,
    async stop() {
      if (child.exitCode !== null) return;
      const done = new Promise((resolveExit) => child.once('exit', resolveExit));
      child.kill('SIGTERM');
      await done;
    },
  };
}

async function waitUntilServing(address: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1_000 });
      await connection.workflowService.getSystemInfo({});
      await connection.close();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`temporal dev server at ${address} did not answer within ${timeoutMs / 1000}s: ${String(error)}`);
      await new Promise((resolveWait) => setTimeout(resolveWait, 250));
    }
  }
}
