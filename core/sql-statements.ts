// Splits SQL into statements with the real PostgreSQL parser, so each error points at its file line.
import { loadModule, parseSync } from 'libpg-query';

export interface SqlStatement {
  sql: string;
  /** 0-based character offset of the statement in the text it came from. */
  offset: number;
}

let parserReady: Promise<void> | undefined;

/** The WASM parser loads once per process. */
export function loadSqlParser(): Promise<void> {
  parserReady ??= loadModule();
  return parserReady;
}

interface RawStatement {
  stmt_location?: number;
  stmt_len?: number;
}

/** Statements in order; throws the parser's own syntax error with its position for malformed SQL. */
export async function splitStatements(text: string): Promise<SqlStatement[]> {
  await loadSqlParser();
  // The parser counts bytes, so offsets are mapped on the UTF-8 buffer and then back to characters.
  const bytes = Buffer.from(text, 'utf8');
  const parsed = parseSync(text) as { stmts?: RawStatement[] };
  return (parsed.stmts ?? []).map((raw) => {
    const start = raw.stmt_location ?? 0;
    const end = raw.stmt_len ? start + raw.stmt_len : bytes.length;
    const leading = bytes.subarray(0, start).toString('utf8');
    const body = bytes.subarray(start, end).toString('utf8');
    const trimmed = body.replace(/^\s+/, '');
    return { sql: trimmed.trimEnd(), offset: leading.length + (body.length - trimmed.length) };
  }).filter((statement) => statement.sql !== '');
}

/** 1-based line in a file of a character offset within a section that starts at `sectionStartLine`. */
export function lineAt(sectionText: string, offset: number, sectionStartLine: number): number {
  let newlines = 0;
  for (let index = 0; index < offset && index < sectionText.length; index++) if (sectionText[index] === '\n') newlines++;
  return sectionStartLine + newlines;
}
