// Dev servers of a test's own, beside the shared one: for tests that need a bare server, the UI or the HTTP API.
import { startDevServer, type DevServer, type DevServerOptions } from '../../worker/dev-server';
import { freePort } from '../../examples/demo/ports';

export interface OwnDevServer extends DevServer {
  uiPort: number;
  httpPort?: number;
}

/** Starts a dev server on free ports (never the fixed 7233/8233 other people may be using). */
export async function startOwnDevServer(options: Omit<DevServerOptions, 'port' | 'uiPort' | 'httpPort'> & { http?: boolean } = {}): Promise<OwnDevServer> {
  const port = await freePort(randomHighPort());
  const uiPort = await freePort(randomHighPort(), [port]);
  const httpPort = options.http ? await freePort(randomHighPort(), [port, uiPort]) : undefined;
  const server = await startDevServer({ ...options, port, uiPort, httpPort, quiet: true });
  return { ...server, uiPort, httpPort };
}

// A random start keeps parallel test files from racing for the same port between the check and the bind.
function randomHighPort(): number {
  return 20_000 + Math.floor(Math.random() * 20_000);
}
