// migrations pending|status: what each environment has run, read straight from its database.
import type { Command } from 'commander';
import { allTargets } from '../../core/config';
import { readMigrationDir } from '../../core/migration-dir';
import { describeEdited } from '../../core/pending';
import { DatabasePools, LEDGER_TABLE, readAppliedState } from '../../activities/db';
import { pendingFleets, readPendingMigrations } from '../../activities/pending-migrations';
import type { CommandContext } from '../context';
import { CliError, EXIT, printJson } from '../output';

interface LedgerRow {
  outcome: string;
  finished_at: Date;
  workflow_id: string | null;
  decided_by: string | null;
}

export function registerMigrationCommands(program: Command, context: CommandContext): void {
  const migrations = program
    .command('migrations')
    .description('inspect post-deploy migrations per environment and database')
    .addHelpText('after', '\nExamples:\n  dbchange migrations pending --env production\n  dbchange migrations status 20230109100044');

  migrations
    .command('pending')
    .description('list post-deploy migrations not yet applied, per database of each environment')
    .option('--env <name>', 'only this environment')
    .option('--json', 'print as JSON')
    .addHelpText(
      'after',
      '\nExample:\n  dbchange migrations pending --env production\n\nReads each database named in dbchange.yaml (databaseUrl, or each of databases:); their variables must be set here.\n' +
        'An environment with several databases lists each as environment/database, e.g. staging/ci.\n' +
        'A pending version older than the newest post-deploy version applied there is marked out of order (see migrations.outOfOrder).',
    )
    .action(async (options: { env?: string; json?: boolean }) => {
      const config = context.config();
      const environments = options.env ? [options.env] : undefined;
      const pools = new DatabasePools();
      try {
        const report = (await readPendingMigrations(config, pools, environments)).map(({ address, database, pending, edited }) => ({ environment: address, database, pending, edited }));
        const fleets = pendingFleets(config, environments);
        if (options.json) printJson('migrations-pending', { environments: report, ...(fleets.length > 0 ? { fleets } : {}) });
        else {
          for (const entry of report) {
            process.stdout.write(`${entry.environment}: ${entry.pending.length} pending\n`);
            for (const item of entry.pending) {
              const late = item.outOfOrder ? `  (out of order: older than applied ${item.outOfOrder.newestApplied})` : '';
              process.stdout.write(`  ${item.version}  ${item.name}${late}\n`);
            }
            if (entry.edited.length > 0) process.stdout.write(`  ! ${describeEdited(entry.environment, entry.edited)}\n`);
          }
          // A fleet's targets are listed when its rollout starts; reading thousands of ledgers here would take as long.
          for (const fleet of fleets) process.stdout.write(`${fleet}: a fleet; its targets are listed when its rollout starts, and \`dbchange pdm status\` shows each wave\n`);
        }
      } finally {
        await pools.close();
      }
    });

  migrations
    .command('status <version>')
    .description('show on which databases of which environments one migration has run (or was skipped), when, and by which pipeline')
    .option('--json', 'print as JSON')
    .addHelpText('after', '\nExample:\n  dbchange migrations status 20230109100044')
    .action(async (version: string, options: { json?: boolean }) => {
      const config = context.config();
      const file = readMigrationDir(config.migrations.postDeploy).find((migration) => migration.version === version);
      if (!file && !/^\d{14}$/.test(version)) throw new CliError(`"${version}" is not a migration version (14 digits)`, EXIT.refused);
      const pools = new DatabasePools();
      try {
        const environments = [];
        for (const target of allTargets(config)) {
          const pool = pools.pool(target);
          const state = await readAppliedState(pool);
          const ledger = state.versions.has(version)
            ? (
                await pool.query<LedgerRow>(
                  `SELECT outcome, finished_at, workflow_id, decided_by FROM ${LEDGER_TABLE} WHERE version = $1 AND outcome <> 'failed' ORDER BY id DESC LIMIT 1`,
                  [version],
                ).catch(() => ({ rows: [] as LedgerRow[] }))
              ).rows[0]
            : undefined;
          environments.push({
            environment: target.address,
            database: target.database,
            applied: state.versions.has(version),
            outcome: ledger?.outcome ?? (state.versions.has(version) ? 'applied outside dbchange' : 'pending'),
            at: ledger?.finished_at?.toISOString(),
            workflowId: ledger?.workflow_id ?? undefined,
            decidedBy: ledger?.decided_by ?? undefined,
          });
        }
        if (options.json) printJson('migration-status', { migration: version, name: file?.name, environments });
        else {
          process.stdout.write(`${version} ${file?.name ?? '(not in the post-deploy folder)'}\n`);
          for (const entry of environments) {
            const where = [entry.at, entry.workflowId && `by ${entry.workflowId}`, entry.decidedBy && `(decided by ${entry.decidedBy})`].filter(Boolean).join(' ');
            process.stdout.write(`  ${entry.environment.padEnd(14)} ${entry.outcome}${where ? ` ${where}` : ''}\n`);
          }
        }
      } finally {
        await pools.close();
      }
    });
}
