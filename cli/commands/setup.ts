// setup: prepares a Temporal namespace (self-hosted or Cloud) for dbchange by registering its search attributes.
import type { Command } from 'commander';
import { ALL_SEARCH_ATTRIBUTES } from '../../core/search-attributes';
import type { CommandContext } from '../context';
import { CliError, EXIT, printJson } from '../output';
import { registerSearchAttributes, SearchAttributeConflictError } from '../search-attribute-setup';

export function registerSetupCommand(program: Command, context: CommandContext): void {
  program
    .command('setup')
    .description("register dbchange's search attributes on the configured namespace (safe to run again)")
    .option('--json', 'print what was done as JSON')
    .addHelpText(
      'after',
      [
        '',
        'Example:',
        '  TEMPORAL_ADDRESS=temporal.internal:7233 TEMPORAL_NAMESPACE=payments dbchange setup',
        '',
        'Uses the same connection settings as every command (TEMPORAL_* variables, temporal.toml profiles).',
        'Temporal Cloud namespaces may only accept search attributes added in the Cloud UI or with tcld;',
        'the error then says so. Exit codes: 0 done, 1 failure, 3 an attribute exists with another type.',
      ].join('\n'),
    )
    .action(async (options: { json?: boolean }) => {
      const client = await context.client();
      const result = await registerSearchAttributes(client.connection, client.options.namespace).catch((error: unknown) => {
        if (error instanceof SearchAttributeConflictError) throw new CliError(error.message, EXIT.refused);
        // gRPC 7 PERMISSION_DENIED, 12 UNIMPLEMENTED: the server (Temporal Cloud, or a locked-down cluster) takes them elsewhere.
        const code = (error as { code?: number }).code;
        if (code === 7 || code === 12) {
          throw new CliError(
            `this server does not let ${client.options.namespace}'s API key or certificate add search attributes (${(error as Error).message}); ask an administrator to add ${ALL_SEARCH_ATTRIBUTES.map((key) => `${key.name} (${key.type})`).join(', ')}, on Temporal Cloud in the namespace's settings or with tcld`,
          );
        }
        throw error;
      });
      if (options.json) {
        printJson('setup', { ...result });
        return;
      }
      const added = result.added.length > 0 ? `added ${result.added.join(', ')}` : 'nothing to add';
      const present = result.alreadyPresent.length > 0 ? `; already present: ${result.alreadyPresent.join(', ')}` : '';
      process.stdout.write(`namespace ${result.namespace}: ${added}${present}\n`);
    });
}
