// Connection to Temporal from the SDK's environment configuration (TEMPORAL_ADDRESS, profiles, API key, TLS).
import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { NativeConnection } from '@temporalio/worker';

export const DEFAULT_TASK_QUEUE = 'dbchange';

export function taskQueue(env: NodeJS.ProcessEnv = process.env): string {
  return env.DBCHANGE_TASK_QUEUE || DEFAULT_TASK_QUEUE;
}

function connectConfig() {
  const { connectionOptions, namespace } = loadClientConnectConfig();
  return { connectionOptions, namespace: namespace ?? 'default' };
}

export async function connectClient(): Promise<Client> {
  const { connectionOptions, namespace } = connectConfig();
  const connection = await Connection.connect(connectionOptions as Parameters<typeof Connection.connect>[0]);
  return new Client({ connection, namespace });
}

export async function connectWorkerConnection(): Promise<{ connection: NativeConnection; namespace: string }> {
  const { connectionOptions, namespace } = connectConfig();
  return { connection: await NativeConnection.connect(connectionOptions), namespace };
}
