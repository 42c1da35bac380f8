// lint [files]: squawk's rules and dbchange's own on migration files; exit 1 when anything is found.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, relative, resolve, sep } from 'node:path';
import { BACKFILL_FILE_PATTERN } from '../../core/backfill-file';
import { lintBackfillText, lintRequiredBackfills } from '../../core/backfill-lint';
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
    .description("lint migrations with squawk's rules and dbchange's own, and backfill files (default: the folders of dbchange.yaml)")
    .option('--kind <kind>', 'regular or post-deploy (default: from the folder the file is in)')
    .option('--json', 'print as JSON')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  dbchange lint',
        '  dbchange lint db/post_migrate/20230109100044_cleanup_web_hook_calls_rename.sql --json',
        '  dbchange lint db/backfills/20241104120000_backfill_ci_runners.yaml',
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
      const backfills = backfillNames(context);
      for (const target of targets) {
        if (target.kind === 'backfill') {
          findings.push(...lintBackfillText(target.path, basename(target.path), readFileSync(target.path, 'utf8')));
          continue;
        }
        findings.push(...(await lintMigrationFile(target.path, target.kind)));
        if (backfills) findings.push(...lintRequiredBackfills(target.path, readFileSync(target.path, 'utf8'), backfills));
      }
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

type FileKind = MigrationKind | 'backfill';

function kindOf(file: string, explicit: string | undefined, context: CommandContext): FileKind {
  if (/\.ya?ml$/.test(file)) return 'backfill';
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

function configuredFiles(context: CommandContext): { path: string; kind: FileKind }[] {
  const { regular, postDeploy, backfills } = context.config().migrations;
  const list = (dir: string, kind: FileKind, pattern: RegExp) =>
    readdirSync(dir).filter((name) => pattern.test(name)).sort().map((name) => ({ path: relative(process.cwd(), join(dir, name)), kind }));
  return [...(regular ? list(regular, 'regular', /\.sql$/) : []), ...list(postDeploy, 'post-deploy', /\.sql$/), ...(backfills && existsSync(backfills) ? list(backfills, 'backfill', /\.ya?ml$/) : [])];
}

/** The backfill names a `-- dbchange:requires-backfill` may use; undefined without a project (nothing to check against). */
function backfillNames(context: CommandContext): string[] | undefined {
  let dir: string | undefined;
  try {
    dir = context.config().migrations.backfills;
  } catch {
    return undefined;
  }
  if (!dir || !existsSync(dir)) return dir ? [] : undefined;
  return readdirSync(dir).flatMap((name) => {
    const match = BACKFILL_FILE_PATTERN.exec(name);
    return match ? [match[2]] : [];
  });
}
