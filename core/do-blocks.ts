// The SQL a DO block runs, read with PL/pgSQL's own parser, and what guards each statement against a second run:
// PostgreSQL has no ADD CONSTRAINT IF NOT EXISTS, so a non-transactional migration wraps it in a DO block.
import { parsePlPgSQLSync } from 'libpg-query';

type Node = Record<string, unknown>;

export interface BlockStatement {
  sql: string;
  /** Conditions that an enclosing EXCEPTION clause catches, by name or SQLSTATE: duplicate_object, 42710. */
  caught: string[];
  /** Inside an IF whose condition reads the catalog, e.g. IF NOT EXISTS (SELECT 1 FROM pg_constraint …). */
  catalogChecked: boolean;
}

/** A condition that reads the catalog: it can ask whether the object exists before creating it. */
const CATALOG_READ = /\b(pg_[a-z_]+|information_schema|to_regclass)\b/i;
const BODY_QUOTE = '$dbchange_do_block$';

/**
 * The SQL statements of a DO block, in order, with their guards; undefined when the block is not PL/pgSQL or PL/pgSQL
 * refuses it (then nothing is known about it, as before DO blocks were read). EXECUTE of a string is not followed.
 */
export function doBlockStatements(doStmt: Node): BlockStatement[] | undefined {
  const options = new Map(((doStmt.args as { DefElem: Node }[] | undefined) ?? []).map(({ DefElem }) => [DefElem.defname as string, ((DefElem.arg as Node).String as Node).sval as string]));
  const body = options.get('as');
  if (body === undefined || body.includes(BODY_QUOTE) || (options.get('language') ?? 'plpgsql').toLowerCase() !== 'plpgsql') return undefined;
  let parsed: { plpgsql_funcs: { PLpgSQL_function: { action: Node } }[] };
  try {
    // PL/pgSQL's parser reads functions, so the block's body becomes one.
    parsed = parsePlPgSQLSync(`CREATE FUNCTION dbchange_do_block() RETURNS void LANGUAGE plpgsql AS ${BODY_QUOTE}${body}${BODY_QUOTE}`) as typeof parsed;
  } catch {
    return undefined;
  }
  const statements: BlockStatement[] = [];
  collect(parsed.plpgsql_funcs[0]?.PLpgSQL_function.action, { caught: [], catalogChecked: false }, statements);
  return statements;
}

function collect(node: unknown, guard: Omit<BlockStatement, 'sql'>, into: BlockStatement[]): void {
  if (Array.isArray(node)) {
    for (const item of node) collect(item, guard, into);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  for (const [type, value] of Object.entries(node as Node)) {
    const statement = value as Node;
    if (type === 'PLpgSQL_stmt_execsql') {
      into.push({ sql: expression(statement.sqlstmt), ...guard });
    } else if (type === 'PLpgSQL_stmt_block') {
      // The handlers guard the block's body; the statements inside a handler are not guarded by it.
      collect(statement.body, { ...guard, caught: [...guard.caught, ...caughtConditions(statement.exceptions)] }, into);
      collect(statement.exceptions, guard, into);
    } else if (type === 'PLpgSQL_stmt_if') {
      const conditions = [statement.cond, ...((statement.elsif_list as { PLpgSQL_if_elsif: Node }[] | undefined) ?? []).map((branch) => branch.PLpgSQL_if_elsif.cond)];
      collect(statement, { ...guard, catalogChecked: guard.catalogChecked || conditions.some((condition) => CATALOG_READ.test(expression(condition))) }, into);
    } else {
      collect(value, guard, into);
    }
  }
}

function caughtConditions(exceptions: unknown): string[] {
  const handlers = (((exceptions as Node | undefined)?.PLpgSQL_exception_block as Node | undefined)?.exc_list as { PLpgSQL_exception: Node }[] | undefined) ?? [];
  return handlers.flatMap((handler) => ((handler.PLpgSQL_exception.conditions as { PLpgSQL_condition: Node }[] | undefined) ?? []).map((condition) => String(condition.PLpgSQL_condition.condname).toLowerCase()));
}

function expression(node: unknown): string {
  return String(((node as Node | undefined)?.PLpgSQL_expr as Node | undefined)?.query ?? '');
}
