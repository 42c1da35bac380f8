// The dbchange worker: workflows plus activities bound to this project's config.
import { resolve } from 'node:path';
import { NativeConnection, Worker, type WorkflowBundle } from '@temporalio/worker';
import { createActivities } from '../activities';
import { DatabasePools } from '../activities/db';
import type { DbChangeConfig } from '../core/config';

export const WORKFLOWS_PATH = resolve(__dirname, '../workflows');

export interface WorkerOptions {
  config: DbChangeConfig;
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  /** Tests bundle once per file and pass the bundle here. */
  workflowBundle?: WorkflowBundle;
  identity?: string;
}

export async function createDbChangeWorker(options: WorkerOptions): Promise<{ worker: Worker; close(): Promise<void> }> {
  const pools = new DatabasePools();
  const worker = await Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    ...(options.identity ? { identity: options.identity } : {}),
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    activities: createActivities(options.config, pools),
    // Migrations and QA commands are heavy; a few at a time per worker keeps databases and CPU calm.
    maxConcurrentActivityTaskExecutions: 20,
    // On SIGTERM an in-flight migration may finish and record itself rather than be cut off and retried.
    shutdownGraceTime: '2m',
  });
  return { worker, close: () => pools.close() };
}
