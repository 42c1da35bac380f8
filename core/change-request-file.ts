// Reads a change request file: its text, its checksum (what approvers approve), and its SQL checked with the
// real PostgreSQL parser, so a typo is reported with its line before anything runs.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseSync } from 'libpg-query';
import { ChangeRequestError, parseChangeRequest, type ChangeRequest, type ChangeStep } from './change-request';
import { lineAt, loadSqlParser } from './sql-statements';

export interface ChangeRequestFile {
  /** The path as given, for messages. */
  file: string;
  /** The file's exact text: it goes into the workflow's history, so what runs is what was approved. */
  content: string;
  /** sha256 of the text, hex. Approvals name it. */
  checksum: string;
  changeRequest: ChangeRequest;
}

/** Enough of a checksum to name it in a chat message; approvals may give this prefix or the whole. */
export const SHORT_CHECKSUM_LENGTH = 12;

export function checksumOfText(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

export async function readChangeRequestFile(file: string): Promise<ChangeRequestFile> {
  let content: string;
  try {
    content = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ChangeRequestError(file, [`cannot read the file: ${(error as Error).message}`]);
  }
  return checkChangeRequestText(content, file);
}

/** Parses a CR's text and checks its SQL; throws ChangeRequestError with every problem found. */
export async function checkChangeRequestText(content: string, file: string): Promise<ChangeRequestFile> {
  const changeRequest = parseChangeRequest(content, file);
  await loadSqlParser();
  const problems = [
    ...changeRequest.steps.flatMap((step) => sqlProblems(step, 'steps')),
    ...changeRequest.rollback.flatMap((step) => sqlProblems(step, 'rollback')),
  ];
  if (problems.length > 0) throw new ChangeRequestError(file, problems);
  return { file, content, checksum: checksumOfText(content), changeRequest };
}

type ParsedStatement = { stmt: Record<string, { kind?: string; concurrent?: boolean }> };

/** Statements that PostgreSQL refuses to run inside a transaction block. */
function needsOwnTransaction(node: string, fields: { concurrent?: boolean }): boolean {
  return (
    node === 'VacuumStmt' ||
    node === 'CreatedbStmt' ||
    node === 'DropdbStmt' ||
    ((node === 'IndexStmt' || node === 'ReindexStmt') && fields.concurrent === true) ||
    (node === 'DropStmt' && fields.concurrent === true)
  );
}

function sqlProblems(step: ChangeStep, list: 'steps' | 'rollback'): string[] {
  if (step.kind === 'approval') return [];
  const text = step.kind === 'sql' ? step.sql : step.query;
  const startLine = step.kind === 'sql' ? step.sqlLine : step.queryLine;
  const field = `${list}.${step.id}.${step.kind}`;
  let statements: ParsedStatement[];
  try {
    statements = ((parseSync(text) as { stmts?: ParsedStatement[] }).stmts ?? []);
  } catch (error) {
    const cursor = (error as { sqlDetails?: { cursorPosition?: number } }).sqlDetails?.cursorPosition ?? 0;
    return [`line ${lineAt(text, cursor, startLine)}: ${field}: ${(error as Error).message}`];
  }
  const nodes = statements.map((statement) => Object.entries(statement.stmt)[0]);
  if (step.kind === 'check') {
    if (nodes.length !== 1 || nodes[0][0] !== 'SelectStmt') {
      return [`line ${startLine}: ${field}: a check is exactly one read-only query (SELECT, WITH … SELECT or VALUES); found ${nodes.map(([node]) => node).join(', ') || 'nothing'}`];
    }
    return [];
  }
  const problems: string[] = [];
  if (nodes.some(([node]) => node === 'TransactionStmt')) {
    problems.push(`line ${startLine}: ${field}: remove BEGIN/COMMIT: dbchange wraps the step in its own transaction (or set transaction: false)`);
  }
  if (step.transaction && nodes.some(([node, fields]) => needsOwnTransaction(node, fields))) {
    problems.push(`line ${startLine}: ${field}: this SQL cannot run inside a transaction (e.g. CREATE INDEX CONCURRENTLY): set transaction: false and write it idempotently (IF NOT EXISTS)`);
  }
  if (!step.transaction && step.lockTables.length > 0) {
    problems.push(`line ${step.line}: ${list}.${step.id}.lockTables: table locks last only as long as a transaction; remove lockTables or set transaction: true`);
  }
  return problems;
}
