// The real stack for one test file: a client on the shared dev server, one workflow bundle, workers on demand.
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, Runtime, DefaultLogger, type Worker, type WorkflowBundle } from '@temporalio/worker';
import { inject } from 'vitest';
import type { DbChangeConfig } from '../../core/config';
import { createDbChangeWorker, WORKFLOWS_PATH } from '../../worker/worker';

let runtimeInstalled = false;

export interface Stack {
  client: Client;
  address: string;
  namespace: string;
  bundle: WorkflowBundle;
  /** A task queue of its own per test keeps tests independent on the shared server. */
  newTaskQueue(): string;
  startWorker(config: DbChangeConfig, taskQueue: string): Promise<RunningWorker>;
  close(): Promise<void>;
}

export interface RunningWorker {
  worker: Worker;
  stop(): Promise<void>;
}

/** On the shared dev server unless `address` names a test's own. */
export async function createStack(namespace = 'default', address = inject('temporalAddress')): Promise<Stack> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
    runtimeInstalled = true;
  }
  const connection = await Connection.connect({ address });
  const nativeConnection = await NativeConnection.connect({ address });
  const client = new Client({ connection, namespace });
  const bundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') });
  const workers: RunningWorker[] = [];
  return {
    client,
    address,
    namespace,
    bundle,
    newTaskQueue: () => `test-${randomUUID()}`,
    async startWorker(config, taskQueue) {
      const { worker, close } = await createDbChangeWorker({ config, connection: nativeConnection, namespace, taskQueue, workflowBundle: bundle });
      const running = worker.run();
      let stopped = false;
      const handle: RunningWorker = {
        worker,
        async stop() {
          if (stopped) return;
          stopped = true;
          worker.shutdown();
          await running;
          await close();
        },
      };
      workers.push(handle);
      return handle;
    },
    async close() {
      await Promise.all(workers.map((worker) => worker.stop()));
      await nativeConnection.close();
      await connection.close();
    },
  };
}

/** Polls until `check` returns a value, or fails with what it last saw. */
export async function eventually<T>(check: () => Promise<T | undefined | false>, what: string, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Replays the full histories of these workflows against the same bundle: any nondeterminism fails. */
export async function replayWorkflows(stack: Stack, workflowIds: string[]): Promise<number> {
  const { Worker } = await import('@temporalio/worker');
  const histories = stack.client.workflow.list({
    query: workflowIds.map((id) => `WorkflowId = '${id}'`).join(' OR '),
  }).intoHistories();
  const results = Worker.runReplayHistories({ workflowBundle: stack.bundle }, histories);
  let replayed = 0;
  for await (const result of results) {
    if (result.error) throw new Error(`replay of ${result.workflowId} failed: ${String(result.error)}`);
    replayed++;
  }
  return replayed;
}

/** Everything a workflow's history says, payloads decoded to text, for searching it for secrets. */
export async function historyText(stack: Stack, workflowId: string): Promise<string> {
  const history = await stack.client.workflow.getHandle(workflowId).fetchHistory();
  // Walked by hand: protobuf messages' toJSON would turn payload bytes into base64, hiding their text.
  const texts: string[] = [];
  const visit = (value: unknown): void => {
    if (value instanceof Uint8Array) texts.push(Buffer.from(value).toString('utf8'));
    else if (typeof value === 'string') texts.push(value);
    else if (Array.isArray(value)) value.forEach(visit);
    else if (value && typeof value === 'object') Object.values(value).forEach(visit);
  };
  visit(history);
  return texts.join('\n');
}
