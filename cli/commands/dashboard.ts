// dashboard: the release manager's page — pending migrations per database, running changes, who waits for whom.
import type { Command } from 'commander';
import { DEFAULT_DASHBOARD_PORT, DEFAULT_TEMPORAL_UI_URL, startDashboard } from '../../dashboard/server';
import type { CommandContext } from '../context';
import { CliError, EXIT, progress } from '../output';

export function registerDashboardCommand(program: Command, context: CommandContext): void {
  program
    .command('dashboard')
    .description('serve a read-only web page: pending migrations per environment and database, running pipelines and change requests, fleet rollouts, and everything waiting for a person')
    .option('--port <port>', 'port to serve on', String(DEFAULT_DASHBOARD_PORT))
    .option('--host <address>', 'address to listen on (127.0.0.1: this machine only)', '127.0.0.1')
    .option('--temporal-ui <url>', 'the Temporal Web UI that workflow links open', DEFAULT_TEMPORAL_UI_URL)
    .addHelpText(
      'after',
      '\nExample:\n  dbchange dashboard --port 8234    # then open http://127.0.0.1:8234/\n\n' +
        'Reads Temporal (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, …) and each database of dbchange.yaml on every page view; the page reloads itself every 15 s.\n' +
        'It sends no signals or updates: it shows the dbchange approve/resolve command to copy instead. It never shows a database URL or password.',
    )
    .action(async (options: { port: string; host: string; temporalUi: string }) => {
      const port = Number(options.port);
      if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new CliError(`--port must be a port number, not ${options.port}`, EXIT.refused);
      const dashboard = await startDashboard({ config: context.config(), client: await context.client(), taskQueue: context.taskQueue, port, host: options.host, temporalUiUrl: options.temporalUi });
      progress(`dbchange dashboard on ${dashboard.url} (task queue ${context.taskQueue}); Ctrl-C stops it`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await dashboard.close();
    });
}
