// INVALID indexes that a concurrent index build of a migration left behind: found before a retry (and dropped,
// so the build runs again), and after the migration (so it is never recorded applied with one).
import type pg from 'pg';
import type { IndexBuild } from '../core/index-builds';
import { qualified } from '../core/sql-names';

export interface InvalidIndex {
  /** schema.name, quoted for SQL. */
  name: string;
  /** True when it is surely this migration's own leftover (a name it builds), so dropping it is safe. */
  leftover: boolean;
}

const INVALID_INDEXES = `
  SELECT format('%I.%I', n.nspname, c.relname) AS name
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE NOT i.indisvalid AND `;

/** What identifies each build's invalid indexes in pg_index, and whether they are surely its own. */
function conditionOf(build: IndexBuild): { where: string; params: string[]; leftover: boolean } {
  switch (build.kind) {
    case 'create':
      return { where: 'i.indexrelid = to_regclass($1)', params: [qualified(build.index)], leftover: true };
    case 'create-unnamed':
      return { where: 'i.indrelid = to_regclass($1)', params: [qualified(build.table)], leftover: false };
    case 'reindex-index':
      // REINDEX CONCURRENTLY builds <index>_ccnew beside the index and leaves <index>_ccold until the swap ends.
      return {
        where: `c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = to_regclass($1)) AND c.relname ~ $2`,
        params: [qualified(build.index), `^${escapeRegex(build.index.name)}_cc(new|old)[0-9]*$`],
        leftover: true,
      };
    case 'reindex-table':
      return { where: `i.indrelid = to_regclass($1) AND c.relname ~ '_cc(new|old)[0-9]*$'`, params: [qualified(build.table)], leftover: true };
  }
}

export async function findInvalidIndexes(client: pg.ClientBase, builds: IndexBuild[]): Promise<InvalidIndex[]> {
  const found = new Map<string, InvalidIndex>();
  for (const build of builds) {
    const { where, params, leftover } = conditionOf(build);
    const result = await client.query<{ name: string }>(`${INVALID_INDEXES}${where}`, params);
    for (const row of result.rows) found.set(row.name, { name: row.name, leftover: leftover || found.get(row.name)?.leftover === true });
  }
  return [...found.values()];
}

/** Invalid indexes there now that were not there, or were this migration's own, before it ran. */
export function newlyInvalid(before: InvalidIndex[], after: InvalidIndex[]): InvalidIndex[] {
  const strangers = new Set(before.filter((index) => !index.leftover).map((index) => index.name));
  return after.filter((index) => !strangers.has(index.name));
}

/** Dropped concurrently (no long lock); IF EXISTS, because a retry may find it already gone. */
export function dropStatement(index: InvalidIndex): string {
  return `DROP INDEX CONCURRENTLY IF EXISTS ${index.name}`;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
