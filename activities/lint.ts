// Lints migration files: squawk's static rules plus dbchange's own, with reasoned suppressions applied.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { applySuppressions, checkOwnRules, sortFindings, withoutRerunSafeValidations, type LintFinding, type MigrationKind } from '../core/lint-rules';
import { parseMigrationSource, type MigrationSource } from '../core/migration-files';
import { parseSchemaChanges, type ParsedStatement } from '../core/schema-changes';
import { runSquawk, runSquawkOnMany } from './squawk';

export async function lintMigrationText(file: string, text: string, kind: MigrationKind): Promise<LintFinding[]> {
  const source = parseMigrationSource(basename(file), text);
  const squawk = await runSquawk({ file, sql: source.up, startLine: source.upStartLine, transactional: source.transactional });
  return sortFindings(await withOwnRules(file, source, kind, squawk));
}

/** Lints many files with one squawk run per transaction mode: the whole plan of a pipeline at once. */
export async function lintMigrationTexts(files: { file: string; text: string }[], kind: MigrationKind): Promise<LintFinding[]> {
  const sources = files.map(({ file, text }) => ({ file, source: parseMigrationSource(basename(file), text) }));
  const squawk = await runSquawkOnMany(sources.map(({ file, source }) => ({ file, sql: source.up, startLine: source.upStartLine, transactional: source.transactional })));
  const findings: LintFinding[] = [];
  for (const { file, source } of sources) {
    findings.push(...(await withOwnRules(file, source, kind, squawk.filter((finding) => finding.file === file))));
  }
  return sortFindings(findings);
}

/** squawk's findings of one file, with dbchange's own rules added and reasoned suppressions applied. */
async function withOwnRules(file: string, source: MigrationSource, kind: MigrationKind, squawk: LintFinding[]): Promise<LintFinding[]> {
  let statements: ParsedStatement[];
  try {
    statements = await parseSchemaChanges(source.up);
  } catch (error) {
    // squawk reports syntax errors with their position; say it here only if squawk did not.
    if (squawk.some((finding) => finding.rule === 'syntax-error')) return squawk;
    const message = error instanceof Error ? error.message : String(error);
    return [...squawk, { file, line: source.upStartLine, column: 1, rule: 'syntax-error', message, fix: 'fix the SQL so that PostgreSQL can parse it', source: 'dbchange' }];
  }
  const own = checkOwnRules(file, source, kind, statements);
  return applySuppressions(file, source, statements, [...withoutRerunSafeValidations(source, statements, squawk), ...own]);
}

export async function lintMigrationFile(path: string, kind: MigrationKind): Promise<LintFinding[]> {
  return lintMigrationText(path, readFileSync(path, 'utf8'), kind);
}
