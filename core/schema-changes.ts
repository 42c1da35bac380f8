// What a statement does to the schema, read from the PostgreSQL parser's tree: the shared input of lint and prechecks.
import { parseSync } from 'libpg-query';
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
}

type Node = Record<string, unknown>;

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
    return { sql, offset, type, ...describe(type, node as Node, sql) };
  });
}

function describe(type: string, node: Node, sql: string): Pick<ParsedStatement, 'changes' | 'rerunnable' | 'concurrently'> {
  return { ...describeChanges(type, node, sql), concurrently: Boolean(node.concurrent) };
}

function describeChanges(type: string, node: Node, sql: string): Pick<ParsedStatement, 'changes' | 'rerunnable'> {
  switch (type) {
    case 'AlterTableStmt':
      return describeAlterTable(node, sql);
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

function describeAlterTable(node: Node, sql: string): Pick<ParsedStatement, 'changes' | 'rerunnable'> {
  const table = tableRef(node.relation);
  const changes: SchemaChange[] = [];
  const rerunnable: boolean[] = [];
  for (const item of (node.cmds as { AlterTableCmd: Node }[] | undefined) ?? []) {
    const cmd = item.AlterTableCmd;
    const column = cmd.name as string;
    switch (cmd.subtype) {
      case 'AT_AddColumn':
        rerunnable.push(Boolean(cmd.missing_ok));
        break;
      case 'AT_DropColumn':
        changes.push({ kind: 'drop', objectType: 'column', name: column, table });
        rerunnable.push(Boolean(cmd.missing_ok));
        break;
      case 'AT_DropConstraint':
        changes.push({ kind: 'drop', objectType: 'constraint', name: column, table });
        rerunnable.push(Boolean(cmd.missing_ok));
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
        break;
      case 'AT_AddConstraint': {
        const constraint = (cmd.def as Node).Constraint as Node;
        rerunnable.push(false);
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
  return { changes, rerunnable: rerunnable.length === 0 ? undefined : rerunnable.every(Boolean) };
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
