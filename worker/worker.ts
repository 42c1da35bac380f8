// The dbchange worker: workflows plus activities bound to this project's config.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { NativeConnection, Worker, type WorkflowBundle, type WorkflowBundleOption } from '@temporalio/worker';
import { createActivities } from '../activities';
import { DatabasePools } from '../activities/db';
import { HoldWatcher } from '../activities/production-holds';
import type { DbChangeConfig } from '../core/config';

export const WORKFLOWS_PATH = resolve(__dirname, '../workflows');
/** Written by `npm run build` (worker/bundle-workflows.ts) next to the compiled code: dist/workflow-bundle.js. */
export const PREBUILT_BUNDLE_PATH = resolve(__dirname, '../workflow-bundle.js');

/** The bundle built with the code when there is one; otherwise the worker bundles the workflows itself at start. */
function workflowCode(bundle: WorkflowBundle | undefined): { workflowBundle: WorkflowBundleOption } | { workflowsPath: string } {
  if (bundle) return { workflowBundle: bundle };
  if (existsSync(PREBUILT_BUNDLE_PATH)) return { workflowBundle: { codePath: PREBUILT_BUNDLE_PATH } };
  return { workflowsPath: WORKFLOWS_PATH };
}

export interface WorkerOptions {
  config: DbChangeConfig;
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  /** Tests bundle once per file and pass the bundle here. */
  workflowBundle?: WorkflowBundle;
  identity?: string;
  /** Workflows kept in memory between their tasks; the SDK's default scales with the heap (thousands). */
  maxCachedWorkflows?: number;
  /** Workflow tasks in flight at once; the SDK's default is 40. */
  maxConcurrentWorkflowTaskExecutions?: number;
}

export async function createDbChangeWorker(options: WorkerOptions): Promise<{ worker: Worker; close(): Promise<void> }> {
  const pools = new DatabasePools();
  const holds = new HoldWatcher(options.config.changeLocks);
  const worker = await Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    ...(options.identity ? { identity: options.identity } : {}),
    ...(options.maxCachedWorkflows !== undefined ? { maxCachedWorkflows: options.maxCachedWorkflows } : {}),
    ...(options.maxConcurrentWorkflowTaskExecutions !== undefined ? { maxConcurrentWorkflowTaskExecutions: options.maxConcurrentWorkflowTaskExecutions } : {}),
    ...workflowCode(options.workflowBundle),
    activities: createActivities(options.config, pools, holds),
    // Migrations and QA commands are heavy; a few at a time per worker keeps databases and CPU calm.
    maxConcurrentActivityTaskExecutions: 20,
    // On SIGTERM an in-flight migration may finish and record itself rather than be cut off and retried.
    shutdownGraceTime: '2m',
    // A heartbeat is how a person's stop reaches a running step: send one every 2 s at most, not every 8 s.
    maxHeartbeatThrottleInterval: '2s',
  });
  return {
    worker,
    close: () => {
      holds.close();
      return pools.close();
    },
  };
}
