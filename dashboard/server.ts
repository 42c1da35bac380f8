// `dbchange dashboard`: a small HTTP server that reads Temporal and the databases on each page view and answers
// with one self-contained HTML page. It only reads: GET and HEAD of / are all it serves.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import type { DbChangeConfig } from '../core/config';
import { DatabasePools } from '../activities/db';
import { renderDashboard, type DashboardData } from './page';
import { readRunningChanges } from './read-changes';
import { describeReadError, readDatabases } from './read-databases';
import { hideSecrets, secretsOf } from './secrets';

export const DEFAULT_DASHBOARD_PORT = 8234;
export const DEFAULT_TEMPORAL_UI_URL = 'http://localhost:8233';

/** Nothing may load from elsewhere, and nothing on the page may run: inline CSS is all it has. */
const HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
};

export interface DashboardOptions {
  config: DbChangeConfig;
  client: Client;
  taskQueue: string;
  port?: number;
  /** 127.0.0.1 unless told: the page names databases and workflows, which is for the team, not the network. */
  host?: string;
  temporalUiUrl?: string;
}

export interface RunningDashboard {
  url: string;
  close(): Promise<void>;
}

/** Reads everything the page shows, now. */
export async function readDashboard(options: DashboardOptions, pools: DatabasePools): Promise<DashboardData> {
  const [databases, changes] = await Promise.all([
    readDatabases(options.config, pools),
    readRunningChanges(options.client, options.taskQueue).catch((error: unknown) => ({ error: describeReadError(error) })),
  ]);
  return {
    namespace: options.client.options.namespace,
    taskQueue: options.taskQueue,
    temporalUiUrl: options.temporalUiUrl ?? DEFAULT_TEMPORAL_UI_URL,
    generatedAt: new Date(),
    databases: databases.databases,
    fleets: databases.fleets,
    changes: 'error' in changes ? [] : changes.changes,
    moreChanges: 'error' in changes ? 0 : changes.more,
    ...('error' in changes ? { temporalError: changes.error } : {}),
  };
}

export async function startDashboard(options: DashboardOptions): Promise<RunningDashboard> {
  const pools = new DatabasePools();
  const secrets = secretsOf(options.config);
  const server = createServer((request, response) => {
    void answer(request, response).catch((error: unknown) => {
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      response.end(hideSecrets(`dbchange dashboard: ${describeReadError(error)}\n`, secrets));
    });
  });
  const answer = async (request: IncomingMessage, response: ServerResponse) => {
    const path = new URL(request.url ?? '/', 'http://dashboard').pathname;
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('the dashboard is read-only\n');
      return;
    }
    if (path !== '/' && path !== '/index.html') {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: the dashboard is at /\n');
      return;
    }
    const page = hideSecrets(renderDashboard(await readDashboard(options, pools)), secrets);
    response.writeHead(200, HEADERS).end(request.method === 'HEAD' ? undefined : page);
  };
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? DEFAULT_DASHBOARD_PORT, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // A browser keeps its connection open between reloads; it must not hold the server up.
      server.closeAllConnections();
      await closed;
      await pools.close();
    },
  };
}
