// init: starts a project in the current folder: a commented dbchange.yaml and its two migration folders.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join, relative } from 'node:path';
import type { Command } from 'commander';
import { configPath } from '../../core/config-file';
import { NEW_PROJECT_FOLDERS, newProjectConfigText } from '../../core/project-template';
import { CliError, EXIT } from '../output';

export function registerInitCommand(program: Command): void {
  program
    .command('init')
    .description('start a project here: write a commented dbchange.yaml and create db/migrate and db/post_migrate')
    .option('--approver <user>', 'who may approve, as release-manager (default: $DBCHANGE_USER, $USER or the login name)')
    .addHelpText(
      'after',
      [
        '',
        'Example:',
        '  dbchange init && dbchange new add_index',
        '',
        'Writes where --config or $DBCHANGE_CONFIG points, else ./dbchange.yaml; folders that exist are kept as they are.',
        'Exit codes: 0 written, 3 a dbchange.yaml is already there (it is never overwritten).',
      ].join('\n'),
    )
    .action((options: { approver?: string }) => {
      const file = configPath(program.opts<{ config?: string }>().config);
      if (existsSync(file)) {
        throw new CliError(`${shown(file)} already exists; dbchange init never overwrites it: edit it, or move it away and run dbchange init again`, EXIT.refused);
      }
      const approver = options.approver ?? process.env.DBCHANGE_USER ?? process.env.USER ?? userInfo().username;
      if (approver.trim() === '') throw new CliError('--approver needs a name', EXIT.refused);
      mkdirSync(dirname(file), { recursive: true });
      // 'wx': a dbchange.yaml created since the check above is still not overwritten.
      writeFileSync(file, newProjectConfigText(approver), { flag: 'wx' });
      process.stdout.write(`created ${shown(file)}\n`);
      for (const folder of Object.values(NEW_PROJECT_FOLDERS).map((name) => join(dirname(file), name))) {
        const existed = existsSync(folder);
        mkdirSync(folder, { recursive: true });
        process.stdout.write(`${existed ? 'kept' : 'created'} ${shown(folder)}/\n`);
      }
      process.stderr.write('next: export DATABASE_URL=postgres://…, write a migration with `dbchange new <name>`, then `dbchange dev` and `dbchange pdm execute --follow`\n');
    });
}

/** A path as the person sees it from where they are. */
function shown(path: string): string {
  return relative(process.cwd(), path) || path;
}
