// A Temporal dev server of the benchmark's own (free ports, in memory) and in-process dbchange workers on it.
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, type WorkflowBundle } from '@temporalio/worker';
import type { DbChangeConfig } from '../../core/config';
import { startDevServer, type DevServer } from '../../worker/dev-server';
import { createDbChangeWorker, WORKFLOWS_PATH } from '../../worker/worker';
import { freePort } from '../../examples/demo/ports';

export interface BenchTemporal {
  server: DevServer;
  client: Client;
  bundle: WorkflowBundle;
  /** Runs a worker for `config` on a fresh task queue until `stop`. */
  startWorker(config: DbChangeConfig): Promise<{ taskQueue: string; stop(): Promise<void> }>;
  close(): Promise<void>;
}


export async function startBenchTemporal(): Promise<BenchTemporal> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const server = await startDevServer({ port: await freePort(), uiPort: await freePort(), quiet: true });
  const connection = await Connection.connect({ address: server.address });
  const nativeConnection = await NativeConnection.connect({ address: server.address });
  const client = new Client({ connection });
  const bundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('ERROR') });
  return {
    server,
    client,
    bundle,
    async startWorker(config) {
      const taskQueue = `bench-${randomUUID()}`;
      const { worker, close } = await createDbChangeWorker({ config, connection: nativeConnection, namespace: 'default', taskQueue, workflowBundle: bundle });
      const running = worker.run();
      return {
        taskQueue,
        async stop() {
          worker.shutdown();
          await running;
          await close();
        },
      };
    },
    async close() {
      await connection.close();
      await nativeConnection.close();
      await server.stop();
    },
  };
}
