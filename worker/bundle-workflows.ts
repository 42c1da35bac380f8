// Builds the workflow bundle once, at build time, so a worker loads it instead of running webpack at every start.
// Bundling in the worker process costs seconds of CPU and leaves the bundler's memory behind for the worker's life.
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { writeFileSync } from 'node:fs';
import { PREBUILT_BUNDLE_PATH, WORKFLOWS_PATH } from './worker';

async function main(): Promise<void> {
  const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') });
  writeFileSync(PREBUILT_BUNDLE_PATH, code);
  console.error(`dbchange build: workflow bundle written to ${PREBUILT_BUNDLE_PATH} (${Math.round(code.length / 1024)} KB)`);
}

main().catch((error: unknown) => {
  console.error(`dbchange build: bundling the workflows failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
