// A fleet's targets read from a real registry database and from a target file: the rows validated, the query's
// failures reported by SQLSTATE, and never a URL or password in any message.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFleetTargets } from '../../activities/fleet-source';
import type { FleetConfig } from '../../core/fleet';
import { FleetSourceError } from '../../core/fleet-source';
import { createDatabase, query } from '../helpers/postgres';

const PASSWORD = 'registry-Pa55word';
const CELL_URL = (n: number) => `postgres://app:${PASSWORD}@cell-${n}.db:5432/app`;

const fleetOf = (source: FleetConfig['source']): FleetConfig => ({ source, waves: [{ count: 1 }, { percent: 100 }], concurrency: 8, haltAfterFailures: 1 });

async function problemsOf(fleet: FleetConfig, env: Record<string, string | undefined> = {}): Promise<string[]> {
  const error = await readFleetTargets(fleet, env).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!(error instanceof FleetSourceError)) throw new Error(`expected a FleetSourceError, got ${String(error)}`);
  expect(error.message).not.toContain(PASSWORD);
  return error.problems;
}

describe('fleet targets from a registry query', () => {
  let registry: Awaited<ReturnType<typeof createDatabase>>;
  /** The registry's URL with a password in it: trust auth ignores it, and no message may show it. */
  let registryUrl: string;
  const fromQuery = (sql: string) => fleetOf({ kind: 'query', query: sql, registryUrl });

  beforeAll(async () => {
    registry = await createDatabase('fleet_registry');
    const url = new URL(registry.url);
    url.password = PASSWORD;
    registryUrl = url.toString();
    await query(
      registry.url,
      `CREATE TABLE cells (name text, url text, schema text, ring int NOT NULL);
       INSERT INTO cells VALUES ('cell-003', $1, NULL, 2), ('cell-001', $2, 'tenant_1', 3), ('cell-002', $3, NULL, 1);
       CREATE TABLE bad_cells (name text, url text);
       INSERT INTO bad_cells VALUES ('cell-001', $1), ('cell-002', 'cell-002.db:5432'), ('cell-001', $2);`.replace(/\$(\d)/g, (_, n: string) => `'${CELL_URL(Number(n))}'`),
    );
  });
  afterAll(async () => {
    await registry?.drop();
  });

  it('lists the targets in the query order, with their schema and the default database main', async () => {
    const targets = await readFleetTargets(fromQuery('SELECT name, url, schema FROM cells WHERE ring >= 2 ORDER BY ring DESC'));
    expect(targets).toEqual([
      { name: 'cell-001', url: CELL_URL(2), schema: 'tenant_1', database: 'main' },
      { name: 'cell-003', url: CELL_URL(1), database: 'main' },
    ]);
  });

  it('connects as dbchange, read-only, with a 30 s statement timeout', async () => {
    const [target] = await readFleetTargets(
      fromQuery(`SELECT current_setting('application_name') || '-' || current_setting('statement_timeout') || '-' || current_setting('transaction_read_only') AS name,
                        'postgres://h/db' AS url`),
    );
    expect(target.name).toBe('dbchange-30s-on');
    expect(await problemsOf(fromQuery('DELETE FROM cells RETURNING name, url'))).toEqual([
      'the registry query failed: ERROR 25006: cannot execute DELETE in a read-only transaction',
    ]);
    expect(await query(registry.url, 'SELECT count(*)::int AS n FROM cells')).toEqual([{ n: 3 }]);
  });

  it('reports a failing query by SQLSTATE and the first line of its message', async () => {
    expect(await problemsOf(fromQuery('SELECT name, url FROM cell_registry'))).toEqual([
      'the registry query failed: ERROR 42P01: relation "cell_registry" does not exist',
    ]);
  });

  it('reports duplicate names and malformed URLs by row, without the URLs', async () => {
    expect(await problemsOf(fromQuery('SELECT name, url FROM bad_cells'))).toEqual([
      'registry row 2 (name "cell-002"): url is not a PostgreSQL URL (expected postgres://user@host:port/database)',
      'registry row 3 (name "cell-001"): duplicate name, also row 1',
    ]);
  });

  it('names the columns it got when name or url is missing', async () => {
    expect(await problemsOf(fromQuery('SELECT name AS cell, url AS dsn FROM cells'))).toEqual([
      'the registry query returned cell, dsn; it must return columns name and url (and optionally schema, database)',
    ]);
  });

  it('refuses a query that lists no targets', async () => {
    expect(await problemsOf(fromQuery('SELECT name, url FROM cells WHERE ring >= 99'))).toEqual([
      'the registry query returned no targets; check its WHERE clause',
    ]);
  });

  it('names an unset registry variable, and a registry it cannot reach, without the URL', async () => {
    expect(await problemsOf(fleetOf({ kind: 'query', query: 'SELECT 1', registryUrl: '${REGISTRY_URL}' }))).toEqual([
      "fleet.source.registryUrl: ${REGISTRY_URL} is not set in this process's environment; export it where the worker runs",
    ]);
    const missingDatabase = new URL(registryUrl);
    missingDatabase.pathname = '/dbchange_fleet_registry_missing';
    expect(await problemsOf(fleetOf({ kind: 'query', query: 'SELECT 1', registryUrl: missingDatabase.toString() }))).toEqual([
      'could not connect to fleet.source.registryUrl: ERROR 3D000: database "dbchange_fleet_registry_missing" does not exist',
    ]);
    expect(await problemsOf(fleetOf({ kind: 'query', query: 'SELECT 1', registryUrl: `postgres://app:${PASSWORD}@127.0.0.1:1/db` }))).toEqual([
      'could not connect to fleet.source.registryUrl: ECONNREFUSED',
    ]);
  });
});

describe('fleet targets from a file', () => {
  let folder: string;
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'dbchange-fleet-'));
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('reads the file with ${VAR} expanded from the environment given', async () => {
    const file = join(folder, 'cells.yaml');
    await writeFile(file, '- { name: cell-001, databaseUrl: "${CELL_001_URL}", database: ci }\n');
    expect(await readFleetTargets(fleetOf({ kind: 'file', file }), { CELL_001_URL: CELL_URL(1) })).toEqual([{ name: 'cell-001', url: CELL_URL(1), database: 'ci' }]);
    expect(await problemsOf(fleetOf({ kind: 'file', file }))).toEqual([
      `${file}: line 1: targets[0].databaseUrl: environment variable CELL_001_URL is not set; export it where the worker runs`,
    ]);
  });

  it('names the path and the key fleet.source.file when the file is missing', async () => {
    const file = join(folder, 'missing.yaml');
    expect(await problemsOf(fleetOf({ kind: 'file', file }))).toEqual([`fleet.source.file: ${file} not found; paths are relative to the folder of dbchange.yaml`]);
  });
});
