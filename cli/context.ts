// What every command needs, created on first use: the config, a Temporal client, the task queue, who is asking.
import type { Client } from '@temporalio/client';
import type { DbChangeConfig } from '../core/config';
import { loadConfig } from '../core/config-file';
import { connectClient, taskQueue } from '../worker/temporal';

export interface CommandContext {
  config(): DbChangeConfig;
  client(): Promise<Client>;
  taskQueue: string;
  close(): Promise<void>;
}

export function createContext(configOption: () => string | undefined): CommandContext {
  let config: DbChangeConfig | undefined;
  let client: Promise<Client> | undefined;
  return {
    config: () => (config ??= loadConfig(configOption())),
    client: () => (client ??= connectClient()),
    taskQueue: taskQueue(),
    async close() {
      if (client) await (await client).connection.close();
    },
  };
}

/** Who is asking: --as, else DBCHANGE_USER, else the login name. */
export function currentUser(explicit?: string): string {
  const user = explicit ?? process.env.DBCHANGE_USER ?? process.env.USER;
  if (!user) throw new Error('say who you are with --as USER (or set DBCHANGE_USER)');
  return user;
}
