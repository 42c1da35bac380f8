// Starts the Temporal CLI's dev server (with its Web UI and dbchange's search attributes) and waits until it answers.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { Connection } from '@temporalio/client';
import { devServerSearchAttributeArgs } from '../core/search-attributes';

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
}

export interface DevServer {
  address: string;
  uiUrl: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

// Compiled code runs from dist/worker, sources from worker/: both find the repository root.
const PROJECT_ROOT = resolve(__dirname, '..', __dirname.includes('/dist/') ? '..' : '');

/** The Temporal CLI the project uses: TEMPORAL_CLI_PATH, `temporal` on PATH, or the one built into .tools/. */
export function temporalCliPath(): string {
  return execFileSync('bash', [resolve(PROJECT_ROOT, 'scripts/temporal-cli.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}

export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const port = options.port ?? 7233;
  const uiPort = options.uiPort ?? 8233;
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--ui-port', String(uiPort), '--log-level', 'error'];
  if (options.dbFilename) args.push('--db-filename', options.dbFilename);
  if (options.httpPort) args.push('--http-port', String(options.httpPort));
  if (options.searchAttributes !== false) args.push(...devServerSearchAttributeArgs());
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
