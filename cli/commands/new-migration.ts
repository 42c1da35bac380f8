// new <name> [--regular]: writes an empty migration file, versioned now in UTC, in the folder dbchange.yaml names.
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Command } from 'commander';
import { MIGRATION_NAME_RULE } from '../../core/migration-files';
import { NEW_MIGRATION_TEXT, newMigrationFileName } from '../../core/new-migration';
import type { CommandContext } from '../context';
import { CliError, EXIT } from '../output';

export function registerNewMigrationCommand(program: Command, context: CommandContext): void {
  program
    .command('new <name>')
    .description('write <UTC version>_<name>.sql with -- migrate:up and -- migrate:down sections in the post-deploy folder, and print its path')
    .option('--regular', 'in the regular folder (migrations.regular, run by your deploy) instead')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  dbchange new add_index',
        '  dbchange new create_users --regular',
        '',
        `The name uses ${MIGRATION_NAME_RULE}. Write the SQL under -- migrate:up, and what undoes it under -- migrate:down.`,
        'Exit codes: 0 written, 3 a bad name, no dbchange.yaml, or no regular folder in it.',
      ].join('\n'),
    )
    .action((name: string, options: { regular?: boolean }) => {
      const { regular, postDeploy } = context.config().migrations;
      const folder = options.regular ? regular : postDeploy;
      if (!folder) throw new CliError(`dbchange.yaml names no regular folder; add migrations.regular (e.g. db/migrate) to it, or leave out --regular`, EXIT.refused);
      if (!existsSync(folder)) throw new CliError(`the migration folder ${relative(process.cwd(), folder)} does not exist; create it (mkdir -p ${relative(process.cwd(), folder)}) and run this again`, EXIT.refused);
      const existing = [regular, postDeploy].filter((dir): dir is string => dir !== undefined && existsSync(dir)).flatMap((dir) => readdirSync(dir));
      const path = join(folder, newMigrationFileName(name, new Date(), existing));
      // 'wx': never replace a file, even one written in the same second by someone else.
      writeFileSync(path, NEW_MIGRATION_TEXT, { flag: 'wx' });
      process.stdout.write(`${relative(process.cwd(), path)}\n`);
    });
}
