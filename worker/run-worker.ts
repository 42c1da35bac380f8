// Runs a dbchange worker until SIGINT/SIGTERM, then drains in-flight tasks and closes database pools.
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { DbChangeConfig } from '../core/config';
import { allTargets, requireDatabaseUrl } from '../core/config';
import { writeJsonLogLine } from './json-log';
import { applyHeapDefaults, workflowMemoryOptions } from './memory-defaults';
import { connectWorkerConnection, taskQueue } from './temporal';
import { startPendingMetrics } from './pending-metrics';
import { createDbChangeWorker } from './worker';

export interface RunWorkerOptions {
  /** host:port for Prometheus metrics at /metrics; off when absent. */
  metricsAddress?: string;
  /** Workflows kept in memory between their tasks (DEFAULT_MAX_CACHED_WORKFLOWS otherwise): fewer saves memory, costs a replay. */
  maxCachedWorkflows?: number;
}

/** Installs the process-wide Runtime: JSON log lines, and Prometheus metrics when asked. Once per process. */
export function installRuntime(options: RunWorkerOptions): void {
  Runtime.install({
    logger: new DefaultLogger((process.env.DBCHANGE_LOG_LEVEL as 'INFO' | undefined) ?? 'INFO', writeJsonLogLine),
    telemetryOptions: options.metricsAddress ? { metrics: { prometheus: { bindAddress: options.metricsAddress } } } : undefined,
  });
}

export async function runWorker(config: DbChangeConfig, options: RunWorkerOptions = {}, log: (line: string) => void = console.error): Promise<void> {
  // Fail at start, not at the first migration, when a database URL cannot be resolved here.
  for (const target of allTargets(config)) requireDatabaseUrl(target);
  // Before Worker.create: the workflow thread it starts takes the young-generation size set here.
  const heapFlags = applyHeapDefaults();
  installRuntime(options);
  const { connection, namespace } = await connectWorkerConnection();
  const queue = taskQueue();
  const { worker, close } = await createDbChangeWorker({ config, connection, namespace, taskQueue: queue, ...workflowMemoryOptions(options.maxCachedWorkflows) });
  log(`dbchange worker: namespace ${namespace}, task queue ${queue}, environments ${config.environments.map((environment) => environment.name).join(', ')}, workflow cache ${worker.options.maxCachedWorkflows}${heapFlags.length ? `, V8 ${heapFlags.join(' ')}` : ''}${options.metricsAddress ? `, metrics on http://${options.metricsAddress}/metrics` : ''}`);
  // Beside the SDK's metrics: what is pending where, for graphs and a "pending too long" alert.
  const pendingMetrics = options.metricsAddress ? startPendingMetrics(config, Runtime.instance().metricMeter, log) : undefined;
  try {
    await worker.run();
  } finally {
    await pendingMetrics?.stop();
    await close();
    await connection.close();
  }
}
