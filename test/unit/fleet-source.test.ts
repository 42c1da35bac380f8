import { describe, expect, it } from 'vitest';
import { FleetSourceError, parseRegistryRows, parseTargetFile } from '../../core/fleet-source';

const PASSWORD = 's3cret-Pa55word';
const ENV = {
  CELL_001_URL: `postgres://app:${PASSWORD}@cell-001.db:5432/app`,
  CELL_002_URL: `postgresql://app:${PASSWORD}@cell-002.db/app?sslmode=require`,
  NOT_A_URL: `mysql://app:${PASSWORD}@cell-003.db/app`,
};

function errorOf(run: () => unknown): FleetSourceError {
  try {
    run();
  } catch (error) {
    if (error instanceof FleetSourceError) return error;
    throw error;
  }
  throw new Error('expected a FleetSourceError');
}

describe('target file', () => {
  it('reads a YAML list of targets in file order, expanding ${VAR} and defaulting the database to main', () => {
    const targets = parseTargetFile(
      `- name: cell-002
  databaseUrl: \${CELL_002_URL}
- { name: cell-001, databaseUrl: "\${CELL_001_URL}", schema: tenant_1, database: ci }
`,
      'cells.yaml',
      ENV,
    );
    expect(targets).toEqual([
      { name: 'cell-002', url: ENV.CELL_002_URL, database: 'main' },
      { name: 'cell-001', url: ENV.CELL_001_URL, schema: 'tenant_1', database: 'ci' },
    ]);
  });

  it('reports every problem at once, each with its file, line, row and field, and never the URL or password', () => {
    const error = errorOf(() =>
      parseTargetFile(
        `- name: cell-007
  databaseUrl: \${CELL_001_URL}
- name: Cell 8
  databaseUrl: \${NOT_A_URL}
- databaseUrl: \${CELL_001_URL}
- name: cell-007
  databaseUrl: \${CELL_002_URL}
- name: cell-009
  databaseUrl: \${CELL_009_URL}
- name: cell-010
  databaseUrl: postgres://app:${PASSWORD}@[bad-host/app
  schema: Tenant-1
- name: ""
  databaseUrl: "${PASSWORD}"
  database: CI
- name: cell-012
  databaseURL: \${CELL_001_URL}
- just a string
`,
        'cells.yaml',
        ENV,
      ),
    );
    expect(error.source).toBe('cells.yaml');
    expect(error.problems).toEqual([
      "cells.yaml: line 3: targets[1].name: is not a valid target name: use lowercase letters, digits, '_', '.' and '-', starting with a letter or digit, at most 63 characters",
      'cells.yaml: line 4: targets[1].databaseUrl: is not a PostgreSQL URL (expected postgres://user@host:port/database)',
      'cells.yaml: line 5: targets[2].name: missing: add it',
      'cells.yaml: line 6: targets[3].name: duplicate target "cell-007" (also line 1)',
      'cells.yaml: line 9: targets[4].databaseUrl: environment variable CELL_009_URL is not set; export it where the worker runs',
      'cells.yaml: line 11: targets[5].databaseUrl: is not a PostgreSQL URL (expected postgres://user@host:port/database)',
      'cells.yaml: line 12: targets[5].schema: is not a plain schema name: use lowercase letters, digits and _, not starting with a digit',
      'cells.yaml: line 13: targets[6].name: is empty',
      'cells.yaml: line 14: targets[6].databaseUrl: is not a PostgreSQL URL (expected postgres://user@host:port/database)',
      'cells.yaml: line 15: targets[6].database: is not a logical database name such as main or ci: use lowercase letters, digits and _',
      'cells.yaml: line 17: targets[7].databaseURL: unknown key (check its spelling)',
      'cells.yaml: line 16: targets[7].databaseUrl: missing: add a postgres:// URL',
      'cells.yaml: line 18: targets[8]: expected a map {name, databaseUrl, schema?, database?}',
    ]);
    expect(error.message).toContain('invalid fleet targets from cells.yaml:\n  - cells.yaml: line 3:');
    expect(error.message).not.toContain(PASSWORD);
    expect(error.message).not.toContain('cell-003.db');
  });

  it('refuses a file that lists no targets', () => {
    expect(errorOf(() => parseTargetFile('[]\n', 'cells.yaml', ENV)).problems).toEqual(['cells.yaml: lists no targets; add at least one {name, databaseUrl}']);
    expect(errorOf(() => parseTargetFile('', 'cells.yaml', ENV)).problems).toEqual(['cells.yaml: lists no targets; add at least one {name, databaseUrl}']);
  });

  it('wants a top-level list, and names the line of a YAML syntax error without echoing the text', () => {
    expect(errorOf(() => parseTargetFile('targets:\n  - name: cell-001\n', 'cells.yaml', ENV)).problems).toEqual([
      'cells.yaml: line 1: expected a YAML list of targets: - {name: cell-001, databaseUrl: ${CELL_001_URL}}',
    ]);
    const syntax = errorOf(() => parseTargetFile(`- name: cell-001\n  databaseUrl: "postgres://app:${PASSWORD}@h/app\n`, 'cells.yaml', ENV));
    expect(syntax.problems[0]).toMatch(/^cells\.yaml: line \d+: /);
    expect(syntax.message).not.toContain(PASSWORD);
  });
});

describe('registry rows', () => {
  const COLUMNS = ['name', 'url', 'schema', 'database', 'ring'];
  const url = (host: string) => `postgres://app:${PASSWORD}@${host}/app`;

  it('keeps the query order and turns NULL schema and database into no schema and main', () => {
    const rows = [
      { name: 'cell-9', url: url('h9'), schema: null, database: null, ring: 2 },
      { name: 'cell-1', url: url('h1'), schema: 'tenant_1', database: 'ci', ring: 3 },
    ];
    expect(parseRegistryRows(rows, COLUMNS, 'fleet.source.query')).toEqual([
      { name: 'cell-9', url: url('h9'), database: 'main' },
      { name: 'cell-1', url: url('h1'), schema: 'tenant_1', database: 'ci' },
    ]);
  });

  it('reports every bad row by its number and name, and never the URL or password', () => {
    const error = errorOf(() =>
      parseRegistryRows(
        [
          { name: 'cell-001', url: url('h1') },
          { name: 'cell-007', url: url('h7') },
          { name: url('oops'), url: 'cell-003' },
          { name: 'cell-007', url: url('h7b') },
          { name: null, url: null },
          { name: 42, url: `mysql://app:${PASSWORD}@h/app`, schema: '1tenant', database: 'Main' },
        ],
        ['name', 'url'],
        'fleet.source.query',
      ),
    );
    expect(error.problems).toEqual([
      "registry row 3: name is not a valid target name: use lowercase letters, digits, '_', '.' and '-', starting with a letter or digit, at most 63 characters",
      'registry row 3: url is not a PostgreSQL URL (expected postgres://user@host:port/database)',
      'registry row 4 (name "cell-007"): duplicate name, also row 2',
      'registry row 5: name missing: add it',
      'registry row 5: url missing: add a postgres:// URL',
      'registry row 6: name must be text',
      'registry row 6: url is not a PostgreSQL URL (expected postgres://user@host:port/database)',
      'registry row 6: schema is not a plain schema name: use lowercase letters, digits and _, not starting with a digit',
      'registry row 6: database is not a logical database name such as main or ci: use lowercase letters, digits and _',
    ]);
    expect(error.message).not.toContain(PASSWORD);
    expect(error.message).not.toContain('oops');
  });

  it('names the columns a query returned when name or url is missing', () => {
    expect(errorOf(() => parseRegistryRows([{ cell: 'a', dsn: 'b' }], ['cell', 'dsn'], 'q')).problems).toEqual([
      'the registry query returned cell, dsn; it must return columns name and url (and optionally schema, database)',
    ]);
  });

  it('refuses a query that returned no targets', () => {
    expect(errorOf(() => parseRegistryRows([], ['name', 'url'], 'q')).problems).toEqual(['the registry query returned no targets; check its WHERE clause']);
  });
});
