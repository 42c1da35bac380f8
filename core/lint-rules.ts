// dbchange's own lint rules: what squawk cannot know, because it depends on how dbchange runs a migration.
import type { MigrationSource } from './migration-files';
import type { ParsedStatement } from './schema-changes';
import { displayTable } from './sql-names';

export type MigrationKind = 'regular' | 'post-deploy';

export interface LintFinding {
  file: string;
  line: number;
  column: number;
  rule: string;
  message: string;
  fix: string;
  /** Who owns the rule: dbchange, or squawk (https://squawkhq.com/docs/rules). */
  source: 'dbchange' | 'squawk';
}

export const RULES = {
  nonTransactionalNotIdempotent: 'non-transactional-not-idempotent',
  concurrentlyInTransaction: 'concurrently-in-transaction',
  validateInSameTransaction: 'validate-in-same-transaction',
  destructiveInRegular: 'destructive-change-in-regular-migration',
  postDeployNeedsCompatibility: 'post-deploy-drop-or-rename',
  suppressionWithoutReason: 'suppression-without-reason',
} as const;

/** squawk's rule for statements that cannot run twice: https://squawkhq.com/docs/prefer-robust-stmts */
const SQUAWK_PREFER_ROBUST = 'prefer-robust-stmts';

/** `-- dbchange-lint-allow rule-a, rule-b: why this is safe here` silences those rules on the next statement. */
const SUPPRESSION_PATTERN = /--\s*dbchange-lint-allow\b\s*([a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*)?\s*(?::\s*(.*))?$/;

interface Located {
  line: number;
  column: number;
}

/** Where a statement starts and ends in the file (1-based lines and columns). */
export function statementSpan(source: MigrationSource, statement: Pick<ParsedStatement, 'offset' | 'sql'>): { start: Located; endLine: number } {
  return { start: locate(source, statement.offset), endLine: locate(source, statement.offset + statement.sql.length).line };
}

function locate(source: MigrationSource, offset: number): Located {
  const before = source.up.slice(0, offset);
  const lastNewline = before.lastIndexOf('\n');
  return { line: source.upStartLine + (before.match(/\n/g)?.length ?? 0), column: offset - lastNewline };
}

export function checkOwnRules(file: string, source: MigrationSource, kind: MigrationKind, statements: ParsedStatement[]): LintFinding[] {
  const findings: LintFinding[] = [];
  const add = (statement: ParsedStatement, rule: string, message: string, fix: string) => {
    const { start } = statementSpan(source, statement);
    findings.push({ file, line: start.line, column: start.column, rule, message, fix, source: 'dbchange' });
  };
  const addedNotValid = new Set<string>();

  for (const statement of statements) {
    if (!source.transactional && statement.rerunnable === false) {
      add(
        statement,
        RULES.nonTransactionalNotIdempotent,
        'this migration runs without a transaction (transaction:false), so a retry after a failure part-way runs this statement again, and it fails the second time',
        rerunFix(statement),
      );
    }
    if (source.transactional && statement.concurrently) {
      add(
        statement,
        RULES.concurrentlyInTransaction,
        'dbchange runs this migration in a transaction, and PostgreSQL refuses CONCURRENTLY inside one',
        'put it in a migration of its own headed `-- migrate:up transaction:false`, with IF NOT EXISTS / IF EXISTS',
      );
    }
    for (const change of statement.changes) {
      if (change.kind === 'add-foreign-key' || change.kind === 'add-check') {
        if (change.notValid && change.constraint) addedNotValid.add(change.constraint);
      }
      if (change.kind === 'validate-constraint' && source.transactional && addedNotValid.has(change.constraint)) {
        add(
          statement,
          RULES.validateInSameTransaction,
          `constraint ${change.constraint} is added NOT VALID and validated in the same transaction, so the validation scan holds the ADD's strong lock on ${displayTable(change.table)} until commit`,
          'move VALIDATE CONSTRAINT into a later migration of its own',
        );
      }
      const destructive = (change.kind === 'drop' || change.kind === 'rename') && (change.objectType === 'column' || change.objectType === 'table');
      if (kind === 'regular' && destructive) {
        add(
          statement,
          RULES.destructiveInRegular,
          `${change.kind === 'drop' ? 'dropping' : 'renaming'} ${change.objectType} ${change.name} in a regular migration breaks the application version that is still running during the deploy`,
          'move it to a post-deploy migration (db/post_migrate), once no running version uses it',
        );
      }
      if (kind === 'post-deploy' && (change.kind === 'drop' || change.kind === 'rename')) {
        add(
          statement,
          RULES.postDeployNeedsCompatibility,
          `this post-deploy migration ${change.kind === 'drop' ? 'drops' : 'renames'} ${change.objectType} ${change.name}: the application version still running may use it (seed 002)`,
          "list the running application's queries under compatibility.queries in dbchange.yaml so the compatibility gate checks them, then allow this rule with the reason",
        );
      }
    }
  }
  return findings;
}

/** How to make this kind of statement safe to run twice, in SQL that PostgreSQL accepts. */
function rerunFix(statement: ParsedStatement): string {
  if (statement.type === 'IndexStmt' && statement.concurrently) {
    return (
      'name the index and add IF NOT EXISTS. That alone is not enough: an interrupted concurrent build leaves an INVALID index of that name, which IF NOT EXISTS then skips; ' +
      "dbchange's invalid-index rule covers it: a retry first drops the INVALID indexes this file builds, and the migration never counts as applied while one it builds is INVALID (it blocks with InvalidIndexLeft)"
    );
  }
  if (statement.type === 'DoStmt') {
    return (
      'guard each statement in the DO block: an EXCEPTION handler for what it raises when run again (duplicate_object for a foreign key or check, duplicate_table for a unique or exclusion constraint), ' +
      'or an IF NOT EXISTS (SELECT 1 FROM pg_constraint …) around it; WHEN OTHERS does not count: it would also swallow a lock timeout and record the migration applied without the change'
    );
  }
  const [added] = statement.addedConstraints;
  if (added) {
    if (!added.name) return 'PostgreSQL has no ADD CONSTRAINT IF NOT EXISTS, and a second run adds an unnamed constraint again under a new name: name it, then guard it with a DO block (lint again for the exact SQL)';
    const sql = statement.sql.replace(/\s+/g, ' ').replace(/;$/, '');
    const checked = `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = '${displayTable(added.table)}'::regclass AND conname = '${added.name}') THEN ${sql}; END IF; END $$;`;
    // A foreign key or check added again raises duplicate_object; a unique or primary key trips over its index or the table's key first.
    return added.type === 'foreign key' || added.type === 'check'
      ? `PostgreSQL has no ADD CONSTRAINT IF NOT EXISTS; let a second run skip it: DO $$ BEGIN ${sql}; EXCEPTION WHEN duplicate_object THEN NULL; END $$; or check the catalog first: ${checked}`
      : `PostgreSQL has no ADD CONSTRAINT IF NOT EXISTS; check the catalog first, so that a second run skips it: ${checked}`;
  }
  return 'add IF NOT EXISTS / IF EXISTS so that running it twice is harmless';
}

/**
 * squawk's prefer-robust-stmts flags every ALTER TABLE in a file without a transaction, VALIDATE CONSTRAINT too; but
 * validating a constraint again is harmless (PostgreSQL skips one already valid), so those findings are only noise.
 */
export function withoutRerunSafeValidations(source: MigrationSource, statements: ParsedStatement[], findings: LintFinding[]): LintFinding[] {
  const validations = statements
    .filter((statement) => statement.changes.length > 0 && statement.changes.every((change) => change.kind === 'validate-constraint') && statement.rerunnable === true)
    .map((statement) => statementSpan(source, statement));
  return findings.filter(
    (finding) => !(finding.source === 'squawk' && finding.rule === SQUAWK_PREFER_ROBUST && validations.some((span) => finding.line >= span.start.line && finding.line <= span.endLine)),
  );
}

/**
 * Applies `-- dbchange-lint-allow` comments: each silences the rules it names on the statement after it,
 * and only when it says why; one without a reason silences nothing and is itself a finding.
 */
export function applySuppressions(file: string, source: MigrationSource, statements: ParsedStatement[], findings: LintFinding[]): LintFinding[] {
  const spans = statements.map((statement) => statementSpan(source, statement));
  const lines = source.up.split('\n');
  const suppressed = new Set<LintFinding>();
  const problems: LintFinding[] = [];
  lines.forEach((text, index) => {
    const match = SUPPRESSION_PATTERN.exec(text);
    if (!match) return;
    const line = source.upStartLine + index;
    const column = text.indexOf('--') + 1;
    const rules = (match[1] ?? '').split(',').map((rule) => rule.trim()).filter(Boolean);
    const reason = (match[2] ?? '').trim();
    if (rules.length === 0 || reason === '') {
      problems.push({
        file,
        line,
        column,
        rule: RULES.suppressionWithoutReason,
        message: 'a dbchange-lint-allow comment must name the rules it allows and say why; this one silences nothing',
        fix: 'write it as: -- dbchange-lint-allow <rule>[, <rule>]: <why this is safe here>',
        source: 'dbchange',
      });
      return;
    }
    const next = spans.find((span) => span.start.line > line);
    if (!next) return;
    for (const finding of findings) {
      if (rules.includes(finding.rule) && finding.line >= next.start.line && finding.line <= next.endLine) suppressed.add(finding);
    }
  });
  return [...findings.filter((finding) => !suppressed.has(finding)), ...problems];
}

export function sortFindings(findings: LintFinding[]): LintFinding[] {
  return [...findings].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column || a.rule.localeCompare(b.rule));
}
