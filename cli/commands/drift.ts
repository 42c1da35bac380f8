// drift [envA envB]: what two environments have run, and how their schemas differ; exit 1 when they do.
import type { Command } from 'commander';
import { describeDrift, type DriftReport } from '../../core/drift';
import { DatabasePools } from '../../activities/db';
import { driftBetween } from '../../activities/drift';
import { databasePairs, selectEnvironments, type DbChangeConfig } from '../../core/config';
import type { CommandContext } from '../context';
import { CliError, EXIT, printJson } from '../output';

export function registerDriftCommand(program: Command, context: CommandContext): void {
  program
    .command('drift [environments...]')
    .description('compare two environments (default: each one with the next in dbchange.yaml), database by database: migrations run, tables, columns, constraints, indexes, triggers')
    .option('--json', 'print as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  dbchange drift\n  dbchange drift staging production --json\n  dbchange drift staging/ci production/ci\n\n' +
        'Environments with several databases are compared database by database (main with main, ci with ci); name one as environment/database.\n' +
        "What PostgreSQL copies to partitions is reported on the parent's line (and the same on N partitions); a partition that differs from its parent gets its own.\n\n" +
        'Exit codes: 0 no drift, 1 drift found, 3 invalid input (not two environments, unknown environment).',
    )
    .action(async (names: string[], options: { json?: boolean }) => {
      const config = context.config();
      if (names.length !== 0 && names.length !== 2) throw new CliError(`name two environments to compare, or none to compare each with the next; got ${names.length}`, EXIT.refused);
      const all = config.environments.map((environment) => environment.name);
      const environmentPairs = names.length === 2 ? [[names[0], names[1]]] : all.slice(1).map((name, index) => [all[index], name]);
      const pairs = environmentPairs.flatMap(([first, second]) => addressPairs(config, first, second));
      const pools = new DatabasePools();
      const reports: (DriftReport & { differences: string[] })[] = [];
      try {
        for (const [first, second] of pairs) {
          const report = await driftBetween(config, pools, first, second);
          reports.push({ ...report, differences: describeDrift(report) });
        }
      } finally {
        await pools.close();
      }
      if (options.json) printJson('drift', { comparisons: reports });
      else {
        for (const report of reports) {
          process.stdout.write(`${report.first} ↔ ${report.second}: ${report.differences.length === 0 ? 'no drift' : `${report.differences.length} difference${report.differences.length === 1 ? '' : 's'}`}\n`);
          for (const line of report.differences) process.stdout.write(`  ${line}\n`);
        }
      }
      process.exitCode = reports.some((report) => report.differences.length > 0) ? EXIT.failure : EXIT.ok;
    });
}

/** Two environments compare each database with its counterpart; addresses such as staging/ci compare just those. */
function addressPairs(config: DbChangeConfig, first: string, second: string): [string, string][] {
  if (first.includes('/') || second.includes('/')) return [[first, second]];
  const [a, b] = [first, second].map((name) => selectEnvironments(config, [name])[0]);
  return databasePairs(a, b).map(([left, right]) => [left.address, right.address]);
}
