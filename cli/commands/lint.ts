// lint [files]: squawk's rules and dbchange's own on migration files; exit 1 when anything is found.
import { readdirSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import type { Command } from 'commander';
import type { LintFinding, MigrationKind } from '../../core/lint-rules';
import { lintMigrationFile } from '../../activities/lint';
import type { CommandContext } from '../context';
import { CliError, EXIT, printJson } from '../output';

const POST_DEPLOY_PATH = /(^|[/\\])post[_-]?(migrate|deploy)[/\\]/;

interface LintOptions {
  json?: boolean;
  kind?: string;
}

export function registerLintCommand(program: Command, context: CommandContext): void {
  program
    .command('lint [files...]')
    .description("lint migrations with squawk's rules and dbchange's own (default: both migration folders of dbchange.yaml)")
    .option('--kind <kind>', 'regular or post-deploy (default: from the folder the file is in)')
    .option('--json', 'print as JSON')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  dbchange lint',
        '  dbchange lint db/post_migrate/20230109100044_cleanup_web_hook_calls_rename.sql --json',
        '',
        'Silence a rule on the next statement, with the reason:',
        '  -- dbchange-lint-allow post-deploy-drop-or-rename: the app stopped reading this column in 16.2',
        '',
        'Exit codes: 0 nothing found, 1 findings, 3 invalid input (unreadable file, bad migration file name).',
      ].join('\n'),
    )
    .action(async (files: string[], options: LintOptions) => {
      if (options.kind !== undefined && options.kind !== 'regular' && options.kind !== 'post-deploy') {
        throw new CliError(`--kind must be regular or post-deploy, not "${options.kind}"`, EXIT.refused);
      }
      const targets = files.length > 0 ? files.map((file) => ({ path: file, kind: kindOf(file, options.kind, context) })) : configuredFiles(context);
      const findings: LintFinding[] = [];
      for (const target of targets) findings.push(...(await lintMigrationFile(target.path, target.kind)));
      if (options.json) printJson('lint', { files: targets.length, findings });
      else {
        for (const finding of findings) {
          process.stdout.write(`${finding.file}:${finding.line}:${finding.column}: ${finding.rule} (${finding.source}): ${finding.message}\n  fix: ${finding.fix}\n`);
        }
        process.stderr.write(`${findings.length} finding${findings.length === 1 ? '' : 's'} in ${targets.length} file${targets.length === 1 ? '' : 's'}\n`);
      }
      process.exitCode = findings.length > 0 ? EXIT.failure : EXIT.ok;
    });
}

function kindOf(file: string, explicit: string | undefined, context: CommandContext): MigrationKind {
  if (explicit) return explicit as MigrationKind;
  const absolute = resolve(file);
  const folders = tryConfigFolders(context);
  if (folders.postDeploy && absolute.startsWith(folders.postDeploy + sep)) return 'post-deploy';
  if (folders.regular && absolute.startsWith(folders.regular + sep)) return 'regular';
  return POST_DEPLOY_PATH.test(absolute) ? 'post-deploy' : 'regular';
}

function tryConfigFolders(context: CommandContext): { regular?: string; postDeploy?: string } {
  try {
    const { regular, postDeploy } = context.config().migrations;
    return { regular: regular && resolve(regular), postDeploy: resolve(postDeploy) };
  } catch {
    // Linting a file needs no project: without one the folder name decides.
    return {};
  }
}

function configuredFiles(context: CommandContext): { path: string; kind: MigrationKind }[] {
  const { regular, postDeploy } = context.config().migrations;
  const list = (dir: string, kind: MigrationKind) =>
    readdirSync(dir).filter((name) => name.endsWith('.sql')).sort().map((name) => ({ path: relative(process.cwd(), join(dir, name)), kind }));
  return [...(regular ? list(regular, 'regular') : []), ...list(postDeploy, 'post-deploy')];
}
