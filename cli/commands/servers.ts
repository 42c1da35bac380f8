// dev and worker: run a local Temporal dev server with a worker, or a worker against the configured Temporal.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { FAST_DISPATCH, startDevServer } from '../../worker/dev-server';
import { DEFAULT_MAX_CACHED_WORKFLOWS } from '../../worker/memory-defaults';
import { runWorker } from '../../worker/run-worker';
import { TemporalCliMissingError } from '../../worker/temporal-cli';
import type { CommandContext } from '../context';
import { CliError, EXIT, progress } from '../output';

export function registerServerCommands(program: Command, context: CommandContext): void {
  program
    .command('worker')
    .description('run a worker against the configured Temporal (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, temporal.toml profiles)')
    .option('--metrics-address <host:port>', 'serve Prometheus metrics at http://host:port/metrics')
    .option('--max-cached-workflows <n>', `workflows kept in memory between their tasks (default: ${DEFAULT_MAX_CACHED_WORKFLOWS}); more saves a history replay when one of many active changes moves, at about 0.3 MB each`)
    .addHelpText(
      'after',
      '\nExample:\n  TEMPORAL_ADDRESS=temporal.internal:7233 dbchange worker --metrics-address 0.0.0.0:9464\n\nThe worker resolves database URLs from its own environment; they never enter workflow history.\nSIGINT/SIGTERM stop it gracefully: in-flight migrations finish or are retried by another worker.',
    )
    .action(async (options: { metricsAddress?: string; maxCachedWorkflows?: string }) => {
      const maxCachedWorkflows = cacheSize(options.maxCachedWorkflows);
      await runWorker(context.config(), { metricsAddress: options.metricsAddress, maxCachedWorkflows });
    });

  program
    .command('dev')
    .description('start a local Temporal dev server (Web UI on :8233) with dbchange search attributes, and a worker')
    .option('--port <port>', 'Temporal frontend port', '7233')
    .option('--ui-port <port>', 'Web UI port', '8233')
    .option('--db-filename <path>', 'keep workflows across restarts in this file', '.dbchange/temporal-dev.db')
    .option('--http-port <port>', "serve the frontend's HTTP API here, for chat tooling that sends plain HTTP (see the README)")
    .option('--metrics-address <host:port>', 'serve the worker\'s Prometheus metrics')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  dbchange dev            # then, in another terminal: dbchange pdm execute --follow',
        '  dbchange dev --http-port 7243',
        '',
        "Runs the Temporal CLI from $TEMPORAL_CLI_PATH, else `temporal` on PATH, else dbchange's own .tools/bin;",
        'without one it says how to get it and exits 3.',
      ].join('\n'),
    )
    .action(async (options: { port: string; uiPort: string; dbFilename: string; httpPort?: string; metricsAddress?: string }) => {
      const config = context.config();
      const dbFilename = resolve(options.dbFilename);
      mkdirSync(dirname(dbFilename), { recursive: true });
      const httpPort = options.httpPort ? Number(options.httpPort) : undefined;
      // A local server should feel instant: hand tasks to the worker as soon as they exist (see FAST_DISPATCH).
      const server = await startDevServer({ port: Number(options.port), uiPort: Number(options.uiPort), dbFilename, httpPort, quiet: true, dynamicConfig: FAST_DISPATCH }).catch(
        (error: unknown) => {
          throw error instanceof TemporalCliMissingError ? new CliError(error.message, EXIT.refused) : error;
        },
      );
      process.env.TEMPORAL_ADDRESS = server.address;
      progress(`Temporal dev server on ${server.address}; Web UI at ${server.uiUrl}${httpPort ? `; HTTP API at http://localhost:${httpPort}/api/v1` : ''}`);
      try {
        await runWorker(config, { metricsAddress: options.metricsAddress }, progress);
      } finally {
        await server.stop();
      }
    });
}

function cacheSize(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const size = Number(text);
  if (!Number.isInteger(size) || size < 2) throw new CliError(`--max-cached-workflows must be a whole number of at least 2, not ${text}`, EXIT.refused);
  return size;
}
