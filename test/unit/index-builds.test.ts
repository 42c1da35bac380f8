import { describe, expect, it } from 'vitest';
import { concurrentIndexBuilds } from '../../core/index-builds';
import { splitStatements } from '../../core/sql-statements';

async function buildsOf(sql: string) {
  return concurrentIndexBuilds(await splitStatements(sql));
}

describe('concurrentIndexBuilds', () => {
  it('names the index a CREATE INDEX CONCURRENTLY builds, in its table\'s schema', async () => {
    expect(await buildsOf('CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_a ON app.events (actor_id);')).toEqual([
      { kind: 'create', table: { schema: 'app', name: 'events' }, index: { schema: 'app', name: 'idx_a' } },
    ]);
  });

  it('keeps an unnamed concurrent build apart: PostgreSQL picks its name', async () => {
    expect(await buildsOf('CREATE UNIQUE INDEX CONCURRENTLY ON events (id);')).toEqual([{ kind: 'create-unnamed', table: { schema: undefined, name: 'events' } }]);
  });

  it('finds REINDEX CONCURRENTLY of an index and of a table', async () => {
    expect(await buildsOf('REINDEX INDEX CONCURRENTLY idx_b; REINDEX TABLE CONCURRENTLY app.events;')).toEqual([
      { kind: 'reindex-index', index: { schema: undefined, name: 'idx_b' } },
      { kind: 'reindex-table', table: { schema: 'app', name: 'events' } },
    ]);
  });

  it('ignores builds inside a transaction and other statements', async () => {
    expect(await buildsOf('CREATE INDEX idx_c ON events (id); REINDEX INDEX idx_c; DROP INDEX CONCURRENTLY IF EXISTS idx_d; UPDATE events SET id = id;')).toEqual([]);
  });
});
