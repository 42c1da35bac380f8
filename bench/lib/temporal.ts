// A Temporal dev server of the benchmark's own (free ports, in memory) and in-process dbchange workers on it.
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import type { DbChangeConfig } from '../../core/config';
import { FAST_DISPATCH, startDevServer, type DevServer } from '../../worker/dev-server';
import { createDbChangeWorker } from '../../worker/worker';
import { freePort } from '../../examples/demo/ports';

export interface BenchTemporal {
  server: DevServer;
  client: Client;
  /** Runs a worker for `config` on a fresh task queue until `stop`. */
  startWorker(config: DbChangeConfig): Promise<{ taskQueue: string; stop(): Promise<void> }>;
  close(): Promise<void>;
}

/** The dev server as it comes, and one with FAST_DISPATCH, side by side in one run. */
export interface BenchServers {
  standard: BenchTemporal;
  fast: BenchTemporal;
}

export async function startBenchServers(): Promise<BenchServers> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const standard = await startBenchTemporal({});
  const fast = await startBenchTemporal(FAST_DISPATCH).catch(async (error: unknown) => {
    await standard.close();
    throw error;
  });
  return { standard, fast };
}

export async function startBenchTemporal(dynamicConfig: Record<string, number | boolean>): Promise<BenchTemporal> {
  const server = await startDevServer({ port: await freePort(), uiPort: await freePort(), quiet: true, dynamicConfig });
  return { server, ...(await connectBenchTemporal(server.address, () => server.stop())) };
}

/** A client and in-process workers on any Temporal frontend (a dev server's, or a cluster's); `close` ends with `stopServer`. */
export async function connectBenchTemporal(address: string, stopServer: () => Promise<void>): Promise<Omit<BenchTemporal, 'server'>> {
  const connection = await Connection.connect({ address });
  const nativeConnection = await NativeConnection.connect({ address });
  const client = new Client({ connection });
  return {
    client,
    async startWorker(config) {
      const taskQueue = `bench-${randomUUID()}`;
      // Workers load the bundle `npm run build` wrote (bench.sh builds first), as `dbchange worker` does.
      const { worker, close } = await createDbChangeWorker({ config, connection: nativeConnection, namespace: 'default', taskQueue });
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
      await stopServer();
    },
  };
}
