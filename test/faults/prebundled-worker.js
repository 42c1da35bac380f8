// A dbchange worker process (the compiled worker and activities) that loads a workflow bundle built once by the
// test, so a replacement for a killed worker polls within a second or two instead of re-bundling on two busy cores.
const { NativeConnection, Runtime, DefaultLogger } = require('@temporalio/worker');
const { loadConfig } = require('../../dist/core/config-file');
const { createDbChangeWorker } = require('../../dist/worker/worker');

async function main() {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const config = loadConfig(process.env.DBCHANGE_CONFIG);
  const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS });
  const { worker } = await createDbChangeWorker({
    config,
    connection,
    namespace: 'default',
    taskQueue: process.env.DBCHANGE_TASK_QUEUE,
    workflowBundle: { codePath: process.env.DBCHANGE_WORKFLOW_BUNDLE },
  });
  console.error(`dbchange worker: prebundled, task queue ${process.env.DBCHANGE_TASK_QUEUE}`);
  await worker.run();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
