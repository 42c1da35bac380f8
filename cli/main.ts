// The `dbchange` command: one small entry, one module per command group.
import { Command, CommanderError } from 'commander';
import { BackfillFileError } from '../core/backfill-file';
import { ChangeRequestError } from '../core/change-request';
import { ConfigError } from '../core/config';
import { MigrationFileError } from '../core/migration-files';
import { registerAuditCommand } from './commands/audit';
import { registerBackfillCommands } from './commands/backfill';
import { registerChangeRequestCommands } from './commands/cr';
import { registerDashboardCommand } from './commands/dashboard';
import { registerDecisionCommands } from './commands/decisions';
import { registerDriftCommand } from './commands/drift';
import { registerIncidentCommands } from './commands/incident';
import { registerInitCommand } from './commands/init';
import { registerLintCommand } from './commands/lint';
import { registerMigrationCommands } from './commands/migrations';
import { registerNewMigrationCommand } from './commands/new-migration';
import { registerPdmCommands } from './commands/pdm';
import { registerServerCommands } from './commands/servers';
import { registerSetupCommand } from './commands/setup';
import { createContext, type CommandContext } from './context';
import { CliError, EXIT, tolerateEarlyReaderExit } from './output';

/** The whole command tree; commands connect to Temporal and read dbchange.yaml only when they run. */
export function createProgram(): { program: Command; context: CommandContext } {
  const program = new Command('dbchange')
    .description('durable database change management for PostgreSQL, on Temporal')
    .option('--config <path>', 'project config (default: $DBCHANGE_CONFIG or ./dbchange.yaml)')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();
  const context = createContext(() => program.opts<{ config?: string }>().config);
  registerInitCommand(program);
  registerNewMigrationCommand(program, context);
  registerServerCommands(program, context);
  registerSetupCommand(program, context);
  registerMigrationCommands(program, context);
  registerPdmCommands(program, context);
  registerChangeRequestCommands(program, context);
  registerDecisionCommands(program, context);
  registerBackfillCommands(program, context);
  registerAuditCommand(program, context);
  registerIncidentCommands(program, context);
  registerLintCommand(program, context);
  registerDriftCommand(program, context);
  registerDashboardCommand(program, context);
  program.addHelpText('after', '\nExit codes: 0 ok, 1 failure, 2 waiting for a person, 3 refused.\nEvery command has --help with an example.');
  return { program, context };
}

export async function main(argv: string[]): Promise<number> {
  tolerateEarlyReaderExit(process.stdout);
  tolerateEarlyReaderExit(process.stderr);
  const { program, context } = createProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.refused;
    process.stderr.write(`dbchange: ${oneLine(error)}\n`);
    return error instanceof CliError ? error.exitCode : error instanceof ConfigError || error instanceof MigrationFileError || error instanceof ChangeRequestError || error instanceof BackfillFileError ? EXIT.refused : EXIT.failure;
  } finally {
    await context.close().catch(() => undefined);
  }
}

function oneLine(error: unknown): string {
  if (error instanceof ConfigError) return `invalid config ${error.file}: ${error.problems.join('; ')}`;
  if (error instanceof ChangeRequestError) return `invalid change request ${error.file}: ${error.problems.join('; ')}`;
  if (error instanceof BackfillFileError) return `invalid backfill ${error.file}: ${error.problems.join('; ')}`;
  if (error instanceof Error) {
    if ((error as { code?: string }).code === 'ECONNREFUSED' || /connect ECONNREFUSED|failed to connect/i.test(error.message)) {
      // pg reports a refused connection with the database's port; the Temporal client says "Failed to connect".
      if ((error as { code?: string }).code === 'ECONNREFUSED' && !/failed to connect/i.test(error.message)) {
        return `cannot reach PostgreSQL: ${error.message}; check the environment's databaseUrl in dbchange.yaml and that the database is up`;
      }
      const address = process.env.TEMPORAL_ADDRESS ? `at ${process.env.TEMPORAL_ADDRESS} ` : '';
      return `cannot reach Temporal ${address}(${error.message}); set TEMPORAL_ADDRESS (or TEMPORAL_PROFILE) to your server, or start one with \`dbchange dev\``;
    }
    return error.message;
  }
  return String(error);
}

if (require.main === module) {
  main(process.argv).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`dbchange: ${String(error)}\n`);
      process.exit(EXIT.failure);
    },
  );
}
