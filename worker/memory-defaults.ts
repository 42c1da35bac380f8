// What a `dbchange worker` keeps in memory by default: most changes wait for a person, and waiting must cost (almost) nothing.
import { setFlagsFromString } from 'node:v8';

/**
 * Workflows kept in memory between their tasks (the SDK's own default grows with the heap: thousands). A parked
 * change waits in its history, not here; one that moves after it left the cache is replayed first (milliseconds).
 */
export const DEFAULT_MAX_CACHED_WORKFLOWS = 100;

/** Workflow tasks in flight at once: one thread runs them all, so more only queue in memory, and the cache keeps room to evict. */
export const DEFAULT_MAX_CONCURRENT_WORKFLOW_TASKS = 10;

/**
 * V8 flags that still work once Node runs (`--max-old-space-size` does not): the heap grows by 20% past what it kept,
 * not up to 4×, and isolates created later (the SDK's workflow thread) get a young generation of 2 MB, not 16 MB.
 */
export const HEAP_FLAGS = ['--heap-growing-percent=20', '--max-semi-space-size=2'];

/** The worker's own settings for memory, where no flag gave them. */
export function workflowMemoryOptions(maxCachedWorkflows: number | undefined): { maxCachedWorkflows: number; maxConcurrentWorkflowTaskExecutions: number } {
  const cache = maxCachedWorkflows ?? DEFAULT_MAX_CACHED_WORKFLOWS;
  // The SDK refuses more tasks in flight than cached workflows (and warns); a cache of 2 runs 2.
  return { maxCachedWorkflows: cache, maxConcurrentWorkflowTaskExecutions: Math.min(DEFAULT_MAX_CONCURRENT_WORKFLOW_TASKS, cache) };
}

/** HEAP_FLAGS but those that node's own arguments or NODE_OPTIONS (`given`) already set. */
export function heapFlagsToSet(given: string): string[] {
  const named = given.replaceAll('_', '-');
  return HEAP_FLAGS.filter((flag) => !named.includes(flag.split('=')[0]));
}

/** Sets the heap flags for this process; call it before the SDK starts its workflow thread. Returns the flags it set. */
export function applyHeapDefaults(): string[] {
  const flags = heapFlagsToSet(`${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`);
  for (const flag of flags) setFlagsFromString(flag);
  return flags;
}
