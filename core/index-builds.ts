// Which indexes a non-transactional migration builds concurrently, read from the parser's tree: an interrupted
// CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY leaves an INVALID index that IF NOT EXISTS then skips.
import { parseSync } from 'libpg-query';
import { loadSqlParser, type SqlStatement } from './sql-statements';
import type { TableRef } from './sql-names';

export type IndexBuild =
  /** CREATE INDEX CONCURRENTLY name ON table: an invalid index of that name is this migration's leftover. */
  | { kind: 'create'; table: TableRef; index: TableRef }
  /** CREATE INDEX CONCURRENTLY ON table without a name: PostgreSQL names it, so only new invalid indexes count. */
  | { kind: 'create-unnamed'; table: TableRef }
  /** REINDEX INDEX CONCURRENTLY name: leftovers are name_ccnew (the copy being built) and name_ccold. */
  | { kind: 'reindex-index'; index: TableRef }
  /** REINDEX TABLE CONCURRENTLY table: leftovers are any *_ccnew / *_ccold index on the table. */
  | { kind: 'reindex-table'; table: TableRef };

type Node = Record<string, unknown>;

export async function concurrentIndexBuilds(statements: SqlStatement[]): Promise<IndexBuild[]> {
  await loadSqlParser();
  return statements.flatMap((statement) => {
    const parsed = parseSync(statement.sql) as { stmts?: { stmt: Node }[] };
    return (parsed.stmts ?? []).flatMap(({ stmt }) => buildOf(stmt));
  });
}

function buildOf(stmt: Node): IndexBuild[] {
  const create = stmt.IndexStmt as Node | undefined;
  if (create?.concurrent) {
    const table = ref(create.relation);
    const name = create.idxname as string | undefined;
    // An index is created in its table's schema.
    return [name ? { kind: 'create', table, index: { schema: table.schema, name } } : { kind: 'create-unnamed', table }];
  }
  const reindex = stmt.ReindexStmt as Node | undefined;
  const concurrently = ((reindex?.params as { DefElem?: Node }[] | undefined) ?? []).some((param) => param.DefElem?.defname === 'concurrently');
  if (reindex && concurrently) {
    if (reindex.kind === 'REINDEX_OBJECT_INDEX') return [{ kind: 'reindex-index', index: ref(reindex.relation) }];
    if (reindex.kind === 'REINDEX_OBJECT_TABLE') return [{ kind: 'reindex-table', table: ref(reindex.relation) }];
  }
  return [];
}

function ref(relation: unknown): TableRef {
  const node = (relation ?? {}) as { schemaname?: string; relname?: string };
  return { schema: node.schemaname, name: node.relname ?? '' };
}
