// dbchange lint on backfill files: every problem of the file as a finding with its line, plus the rules that a
// parsed file can still break; and migrations that require a backfill the project does not have.
import { BackfillFileError, parseBackfillFile } from './backfill-file';
import type { LintFinding } from './lint-rules';

export const BACKFILL_RULES = {
  invalidBackfill: 'invalid-backfill',
  oneStatementPerBatch: 'backfill-one-statement',
  unknownBackfill: 'requires-unknown-backfill',
} as const;

export function lintBackfillText(file: string, fileName: string, text: string): LintFinding[] {
  const finding = (line: number, rule: string, message: string, fix: string): LintFinding => ({ file, line, column: 1, rule, message, fix, source: 'dbchange' });
  try {
    const parsed = parseBackfillFile(fileName, text);
    if (holdsSeveralStatements(parsed.batch)) {
      const line = text.split('\n').findIndex((row) => /^batch\s*:/.test(row)) + 1;
      return [finding(line, BACKFILL_RULES.oneStatementPerBatch, 'the batch holds more than one statement; each batch runs as one statement with :start and :end bound', 'write one statement (a CTE can do several things in one)')];
    }
    return [];
  } catch (error) {
    if (!(error instanceof BackfillFileError)) throw error;
    return error.problems.map((problem) => {
      const match = /^line (\d+): (.*)$/.exec(problem);
      return finding(match ? Number(match[1]) : 1, BACKFILL_RULES.invalidBackfill, match ? match[2] : problem, 'fix the file as the message says; `dbchange lint` checks it again');
    });
  }
}

/** A `-- dbchange:requires-backfill NAME` whose NAME no backfill file has would wait forever. */
export function lintRequiredBackfills(file: string, text: string, known: string[]): LintFinding[] {
  return text.split('\n').flatMap((line, index) => {
    const match = /^--\s*dbchange:requires-backfill\s+(\S+)\s*$/.exec(line.trim());
    if (!match || known.includes(match[1])) return [];
    return [{ file, line: index + 1, column: 1, rule: BACKFILL_RULES.unknownBackfill, source: 'dbchange' as const, message: `requires backfill ${match[1]}, which no file of migrations.backfills names (known: ${known.join(', ') || 'none'})`, fix: 'fix the name, or add the backfill file <version>_<name>.yaml' }];
  });
}

/** A `;` between statements, outside comments and literals (a trailing one is fine). */
function holdsSeveralStatements(sql: string): boolean {
  const code = sql.replace(/--.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '').replace(/'(?:[^']|'')*'/g, "''").replace(/\$(\w*)\$[\s\S]*?\$\1\$/g, '');
  return code.trim().replace(/;\s*$/, '').includes(';');
}
