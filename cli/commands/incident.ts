// incident open|close: production checks hold every change while a severity 1 or 2 incident is open.
import type { Command } from 'commander';
import type { CommandContext } from '../context';
import { currentUser } from '../context';
import { CliError, EXIT, printJson } from '../output';
import { closeIncidentById, openIncident } from '../pipeline-client';

export function registerIncidentCommands(program: Command, context: CommandContext): void {
  const incident = program
    .command('incident')
    .description('open and close incidents that production checks respect')
    .addHelpText('after', '\nExamples:\n  dbchange incident open --severity 2 --title "runner verify API returns 500" --id 18792\n  dbchange incident close 18792');

  incident
    .command('open')
    .description('open an incident; severity 1 and 2 hold pipelines and change requests before each environment')
    .requiredOption('--severity <n>', '1 (critical) to 4 (low)')
    .requiredOption('--title <text>', 'what is happening')
    .option('--id <id>', 'incident id (default: a UTC timestamp)')
    .option('--as <user>', 'who opens it')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  dbchange incident open --severity 2 --title "runner verify API returns 500" --id 18792')
    .action(async (options: { severity: string; title: string; id?: string; as?: string; json?: boolean }) => {
      const severity = Number(options.severity);
      if (!Number.isInteger(severity) || severity < 1 || severity > 4) throw new CliError('--severity must be 1, 2, 3 or 4', EXIT.refused);
      const id = options.id ?? new Date().toISOString().replace(/\D/g, '').slice(0, 14);
      const workflowId = await openIncident(await context.client(), { id, severity, title: options.title, openedBy: currentUser(options.as) }, context.taskQueue);
      if (options.json) printJson('incident', { workflowId, severity, open: true });
      else process.stdout.write(`opened ${workflowId} (severity ${severity}); close it with \`dbchange incident close ${id}\`\n`);
    });

  incident
    .command('close <id>')
    .description('close an incident; held changes continue at their next check')
    .option('--as <user>', 'who closes it')
    .option('--comment <text>', 'recorded with the close')
    .addHelpText('after', '\nExample:\n  dbchange incident close 18792 --comment "mitigated"')
    .action(async (id: string, options: { as?: string; comment?: string }) => {
      const workflowId = await closeIncidentById(await context.client(), id, currentUser(options.as), options.comment);
      process.stdout.write(`closed ${workflowId}\n`);
    });
}
