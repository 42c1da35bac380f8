// What a statement does to the schema, read from the PostgreSQL parser's tree: the shared input of lint and prechecks.
import { parseSync } from 'libpg-query';
import { doBlockStatements, type BlockStatement } from './do-blocks';
import { loadSqlParser, splitStatements } from './sql-statements';
import type { TableRef } from './sql-names';

export type { TableRef } from './sql-names';

export type SchemaChange =
  | { kind: 'add-foreign-key'; table: TableRef; constraint?: string; columns: string[]; references: TableRef; referencedColumns: string[]; notValid: boolean }
  | { kind: 'add-check'; table: TableRef; constraint?: string; expression: string; notValid: boolean }
  | { kind: 'validate-constraint'; table: TableRef; constraint: string }
  | { kind: 'set-not-null'; table: TableRef; column: string }
  | { kind: 'alter-column-type'; table: TableRef; column: string; newType: string }
  | { kind: 'create-unique-index'; table: TableRef; index?: string; columns: string[] | undefined; where?: string }
  | { kind: 'drop'; objectType: string; name: string; table?: TableRef }
  | { kind: 'rename'; objectType: string; name: string; newName: string; table?: TableRef };

/** ALTER TABLE … ADD CONSTRAINT: PostgreSQL has no IF NOT EXISTS for it, and what a second run raises depends on the type. */
export interface AddedConstraint {
  table: TableRef;
  name?: string;
  type: 'foreign key' | 'check' | 'unique' | 'primary key' | 'exclusion' | 'other';
}

export interface ParsedStatement {
  sql: string;
  /** 0-based character offset of the statement in the text it came from. */
  offset: number;
  /** The parser's node type, e.g. AlterTableStmt. */
  type: string;
  changes: SchemaChange[];
  /**
   * Whether running it twice is harmless: true with IF [NOT] EXISTS, false for a create/drop/add without it,
   * undefined when the statement's kind says nothing either way (e.g. UPDATE).
   */
  rerunnable: boolean | undefined;
  /** CREATE/DROP INDEX CONCURRENTLY, which PostgreSQL refuses inside a transaction. */
  concurrently: boolean;
  /** Constraints it adds, directly or in a DO block. */
  addedConstraints: AddedConstraint[];
}

type Node = Record<string, unknown>;

/** What a statement does, and for each part that fails when run twice, the conditions (names and SQLSTATEs) it raises then. */
type Description = Pick<ParsedStatement, 'changes' | 'rerunnable'> & { addedConstraints?: AddedConstraint[]; rerunErrors?: string[][] };

/** What ADD CONSTRAINT raises the second time, by type. A primary key raises invalid_table_definition ("multiple
 * primary keys"), which also means other mistakes, so only a catalog check guards it. */
const ADDED_AGAIN: Record<AddedConstraint['type'], string[]> = {
  'foreign key': ['duplicate_object', '42710'],
  check: ['duplicate_object', '42710'],
  unique: ['duplicate_table', '42p07'],
  exclusion: ['duplicate_table', '42p07'],
  'primary key': [],
  other: ['duplicate_object', '42710', 'duplicate_table', '42p07'],
};
/** Any other statement that fails the second time says that its object already exists, or no longer does. */
const DONE_ALREADY = ['duplicate_object', '42710', 'duplicate_table', '42p07', 'duplicate_column', '42701', 'duplicate_schema', '42p06',
  'undefined_object', '42704', 'undefined_table', '42p01', 'undefined_column', '42703'];
const CONSTRAINT_TYPES: Record<string, AddedConstraint['type']> = {
  CONSTR_FOREIGN: 'foreign key',
  CONSTR_CHECK: 'check',
  CONSTR_UNIQUE: 'unique',
  CONSTR_PRIMARY: 'primary key',
  CONSTR_EXCLUSION: 'exclusion',
};

const LEADING_COMMENTS = /^(?:\s*(?:--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/))*\s*/;

/** Every statement of `text` with the schema changes it makes; throws the parser's error on malformed SQL. */
export async function parseSchemaChanges(text: string): Promise<ParsedStatement[]> {
  await loadSqlParser();
  return (await splitStatements(text)).map((statement) => {
    // The parser counts comments before a statement as part of it; findings point at the SQL itself.
    const leading = LEADING_COMMENTS.exec(statement.sql)?.[0].length ?? 0;
    const sql = statement.sql.slice(leading);
    const offset = statement.offset + leading;
    const parsed = parseSync(sql) as { stmts?: { stmt: Node }[] };
    const stmt = parsed.stmts?.[0]?.stmt ?? {};
    const [type, node] = Object.entries(stmt)[0] ?? ['Unknown', {}];
    const { changes, rerunnable, addedConstraints = [] } = describeChanges(type, node as Node, sql);
    return { sql, offset, type, changes, rerunnable, addedConstraints, concurrently: Boolean((node as Node).concurrent) };
  });
}

function describeChanges(type: string, node: Node, sql: string): Description {
  switch (type) {
    case 'AlterTableStmt':
      return describeAlterTable(node, sql);
    case 'DoStmt':
      return describeDoBlock(node);
    case 'IndexStmt': {
      const table = tableRef(node.relation);
      const params = (node.indexParams as { IndexElem: Node }[] | undefined) ?? [];
      const plain = params.every((param) => typeof param.IndexElem.name === 'string');
      const changes: SchemaChange[] = node.unique
        ? [{
            kind: 'create-unique-index',
            table,
            index: node.idxname as string | undefined,
            columns: plain ? params.map((param) => param.IndexElem.name as string) : undefined,
            where: node.whereClause ? textAfterKeyword(sql, 'WHERE') : undefined,
          }]
        : [];
      return { changes, rerunnable: Boolean(node.if_not_exists) };
    }
    case 'CreateStmt':
    case 'CreateTableAsStmt':
    case 'CreateSeqStmt':
    case 'CreateExtensionStmt':
    case 'CreateSchemaStmt':
      return { changes: [], rerunnable: Boolean(node.if_not_exists) };
    case 'DropStmt': {
      const objectType = objectTypeName(node.removeType);
      const names = ((node.objects as Node[] | undefined) ?? []).map(qualifiedName);
      return { changes: names.map((name) => ({ kind: 'drop', objectType, name })), rerunnable: Boolean(node.missing_ok) };
    }
    case 'RenameStmt': {
      const objectType = objectTypeName(node.renameType);
      const table = node.relation ? tableRef(node.relation) : undefined;
      const name = (node.subname as string | undefined) ?? table?.name ?? qualifiedName(node.object as Node);
      return { changes: [{ kind: 'rename', objectType, name, newName: node.newname as string, table }], rerunnable: Boolean(node.missing_ok) || undefined };
    }
    default:
      return { changes: [], rerunnable: undefined };
  }
}

/** A DO block makes the changes of the statements it runs, and is safe to run twice when each of them is. */
function describeDoBlock(node: Node): Description {
  const changes: SchemaChange[] = [];
  const addedConstraints: AddedConstraint[] = [];
  const verdicts: boolean[] = [];
  for (const statement of doBlockStatements(node) ?? []) {
    let stmt: Node | undefined;
    try {
      stmt = (parseSync(statement.sql) as { stmts?: { stmt: Node }[] }).stmts?.[0]?.stmt;
    } catch {
      continue; // PL/pgSQL read it as SQL, but the SQL parser cannot: nothing is known about it
    }
    const [type, inner] = Object.entries(stmt ?? {})[0] ?? ['Unknown', {}];
    const described = describeChanges(type, inner as Node, statement.sql);
    changes.push(...described.changes);
    addedConstraints.push(...(described.addedConstraints ?? []));
    if (described.rerunnable !== undefined) verdicts.push(described.rerunnable || guardedAgainstRerun(statement, described.rerunErrors ?? [DONE_ALREADY]));
  }
  return { changes, addedConstraints, rerunnable: verdicts.length === 0 ? undefined : verdicts.every(Boolean) };
}

/** A catalog check skips it, or a handler catches what each part raises the second time (WHEN OTHERS does not count: it would also hide a lock timeout). */
function guardedAgainstRerun(statement: BlockStatement, rerunErrors: string[][]): boolean {
  return statement.catalogChecked || rerunErrors.every((conditions) => conditions.some((condition) => statement.caught.includes(condition)));
}

function describeAlterTable(node: Node, sql: string): Description {
  const table = tableRef(node.relation);
  const changes: SchemaChange[] = [];
  const addedConstraints: AddedConstraint[] = [];
  const rerunnable: boolean[] = [];
  const rerunErrors: string[][] = [];
  const rerun = (safe: boolean, errors: string[]) => {
    rerunnable.push(safe);
    if (!safe) rerunErrors.push(errors);
  };
  for (const item of (node.cmds as { AlterTableCmd: Node }[] | undefined) ?? []) {
    const cmd = item.AlterTableCmd;
    const column = cmd.name as string;
    switch (cmd.subtype) {
      case 'AT_AddColumn':
        rerun(Boolean(cmd.missing_ok), ['duplicate_column', '42701']);
        break;
      case 'AT_DropColumn':
        changes.push({ kind: 'drop', objectType: 'column', name: column, table });
        rerun(Boolean(cmd.missing_ok), ['undefined_column', '42703']);
        break;
      case 'AT_DropConstraint':
        changes.push({ kind: 'drop', objectType: 'constraint', name: column, table });
        rerun(Boolean(cmd.missing_ok), ['undefined_object', '42704']);
        break;
      case 'AT_SetNotNull':
        changes.push({ kind: 'set-not-null', table, column });
        break;
      case 'AT_AlterColumnType': {
        const typeName = ((cmd.def as Node).ColumnDef as Node).typeName as { names: { String: { sval: string } }[] };
        changes.push({ kind: 'alter-column-type', table, column, newType: typeName.names.map((name) => name.String.sval).filter((name) => name !== 'pg_catalog').join('.') });
        break;
      }
      case 'AT_ValidateConstraint':
        changes.push({ kind: 'validate-constraint', table, constraint: column });
        // Validating a constraint that is already valid does nothing.
        rerunnable.push(true);
        break;
      case 'AT_AddConstraint': {
        const constraint = (cmd.def as Node).Constraint as Node;
        const added: AddedConstraint = { table, name: constraint.conname as string | undefined, type: CONSTRAINT_TYPES[constraint.contype as string] ?? 'other' };
        addedConstraints.push(added);
        rerun(false, ADDED_AGAIN[added.type]);
        if (constraint.contype === 'CONSTR_FOREIGN') {
          changes.push({
            kind: 'add-foreign-key',
            table,
            constraint: constraint.conname as string | undefined,
            columns: strings(constraint.fk_attrs),
            references: tableRef(constraint.pktable),
            referencedColumns: strings(constraint.pk_attrs),
            notValid: Boolean(constraint.skip_validation),
          });
        } else if (constraint.contype === 'CONSTR_CHECK') {
          changes.push({
            kind: 'add-check',
            table,
            constraint: constraint.conname as string | undefined,
            expression: parenthesisedAfter(sql, constraint.location as number, 'CHECK') ?? 'true',
            notValid: Boolean(constraint.skip_validation),
          });
        }
        break;
      }
    }
  }
  return { changes, addedConstraints, rerunErrors, rerunnable: rerunnable.length === 0 ? undefined : rerunnable.every(Boolean) };
}

function tableRef(relation: unknown): TableRef {
  const node = (relation ?? {}) as Node;
  return { schema: node.schemaname as string | undefined, name: node.relname as string };
}

function strings(list: unknown): string[] {
  return ((list as { String: { sval: string } }[] | undefined) ?? []).map((item) => item.String.sval);
}

function qualifiedName(object: Node | undefined): string {
  if (!object) return '';
  if (object.List) return strings((object.List as Node).items).join('.');
  if (object.String) return (object.String as { sval: string }).sval;
  return Object.keys(object)[0] ?? '';
}

function objectTypeName(value: unknown): string {
  return String(value ?? '').replace(/^OBJECT_/, '').toLowerCase().replace(/_/g, ' ');
}

/** The text inside the parentheses that follow `keyword` at or after `from`: the parser keeps no expression text. */
function parenthesisedAfter(sql: string, from: number, keyword: string): string | undefined {
  const at = sql.toUpperCase().indexOf(keyword, Math.max(0, from));
  const open = sql.indexOf('(', at);
  if (at < 0 || open < 0) return undefined;
  let depth = 0;
  let quote: string | undefined;
  for (let index = open; index < sql.length; index++) {
    const char = sql[index];
    if (quote) {
      if (char === quote) quote = undefined;
    } else if (char === "'" || char === '"') quote = char;
    else if (char === '(') depth++;
    else if (char === ')' && --depth === 0) return sql.slice(open + 1, index).trim();
  }
  return undefined;
}

function textAfterKeyword(sql: string, keyword: string): string | undefined {
  const match = new RegExp(`\\b${keyword}\\b([\\s\\S]*)$`, 'i').exec(sql);
  return match?.[1].trim().replace(/;$/, '') || undefined;
}
