import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_CACHED_WORKFLOWS, HEAP_FLAGS, heapFlagsToSet, workflowMemoryOptions } from '../../worker/memory-defaults';

describe('the worker memory defaults', () => {
  it('caches 100 workflows and runs 10 workflow tasks at once when no flag says otherwise', () => {
    expect(workflowMemoryOptions(undefined)).toEqual({ maxCachedWorkflows: DEFAULT_MAX_CACHED_WORKFLOWS, maxConcurrentWorkflowTaskExecutions: 10 });
    expect(DEFAULT_MAX_CACHED_WORKFLOWS).toBe(100);
  });

  it('keeps --max-cached-workflows, and never runs more workflow tasks at once than it caches', () => {
    expect(workflowMemoryOptions(1000)).toEqual({ maxCachedWorkflows: 1000, maxConcurrentWorkflowTaskExecutions: 10 });
    expect(workflowMemoryOptions(2)).toEqual({ maxCachedWorkflows: 2, maxConcurrentWorkflowTaskExecutions: 2 });
  });

  it('sets every heap flag that neither node arguments nor NODE_OPTIONS give, however they spell it', () => {
    expect(heapFlagsToSet('')).toEqual(HEAP_FLAGS);
    expect(heapFlagsToSet('--max-old-space-size=256')).toEqual(HEAP_FLAGS);
    expect(heapFlagsToSet('--require x.js --max-semi-space-size=8')).toEqual(['--heap-growing-percent=20']);
    expect(heapFlagsToSet('--heap_growing_percent=50 --max_semi_space_size=8')).toEqual([]);
  });
});
