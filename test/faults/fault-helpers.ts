// Shared by the fault suite: seeded randomness that can be replayed, free ports, and a history search for secrets.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { assertBuilt, REPO_ROOT, type CliTarget, type WorkerProcess } from '../helpers/processes';
import { historyText, type Stack } from '../helpers/stack';

const PREBUNDLED_WORKER = fileURLToPath(new URL('./prebundled-worker.js', import.meta.url));

/** A seed from DBCHANGE_FAULT_SEED (to replay a failure) or a fresh one; always printed by the caller. */
export function faultSeed(): number {
  const fromEnv = Number(process.env.DBCHANGE_FAULT_SEED);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : Math.floor(Math.random() * 2 ** 31) + 1;
}

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export { freePort } from '../../examples/demo/ports';

/** A webhook receiver that answers 200, so notifications succeed quickly; its URL path carries a secret token. */
export async function startWebhook(): Promise<{ url(token: string): string; received: string[]; close(): Promise<void> }> {
  const received: string[] = [];
  const server: Server = createHttpServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      received.push(body);
      response.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (token) => `http://127.0.0.1:${port}/hooks/${token}`,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Fetches each workflow's full history and fails if any secret appears in it, naming the workflow. */
export async function expectNoSecretsInHistories(stack: Stack, workflowIds: string[], secrets: string[]): Promise<number> {
  expect(secrets.every((secret) => secret.length >= 12)).toBe(true);
  let checked = 0;
  for (const workflowId of new Set(workflowIds)) {
    const text = await historyText(stack, workflowId);
    expect(text.length).toBeGreaterThan(0);
    for (const secret of secrets) expect(text.includes(secret), `${workflowId}'s history contains a secret`).toBe(false);
    checked++;
  }
  return checked;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Writes a workflow bundle (a stack's, usually) to a file that prebundled-worker.js processes load. */
export function writeBundle(source: { bundle: { code: string } }): string {
  const path = join(mkdtempSync(join(tmpdir(), 'dbchange-bundle-')), 'workflows.js');
  writeFileSync(path, source.bundle.code);
  return path;
}

/** Spawns prebundled-worker.js and resolves once it polls; SIGKILL it to simulate a crashed worker. */
export async function startPrebundledWorker(target: CliTarget, bundlePath: string): Promise<WorkerProcess> {
  assertBuilt();
  const child = spawn(process.execPath, [PREBUNDLED_WORKER], {
    cwd: REPO_ROOT,
    env: { ...process.env, TEMPORAL_ADDRESS: target.address, DBCHANGE_TASK_QUEUE: target.taskQueue, DBCHANGE_CONFIG: target.configPath, DBCHANGE_WORKFLOW_BUNDLE: bundlePath },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const ready = new Promise<void>((resolve, reject) => {
    const collect = (chunk: string) => {
      output += chunk;
      if (output.includes('dbchange worker:')) resolve();
    };
    child.stdout!.setEncoding('utf8').on('data', collect);
    child.stderr!.setEncoding('utf8').on('data', collect);
    void exited.then((how) => reject(new Error(`prebundled worker exited with ${how} before polling: ${output}`)));
  });
  await ready;
  return {
    pid: child.pid!,
    output: () => output,
    exited,
    async kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
