// A fleet's targets come in untrusted, from a YAML file or a registry query, and leave validated. Every problem
// is reported at once, naming the row and field; never the URL, which usually carries a password.
import { isTargetName, TARGET_NAME_RULE } from './fleet';
import { DATABASE_NAME_PATTERN, MAIN_DATABASE } from './targets';
import { readYamlSource } from './yaml-source';

/** A schema target is `SET search_path`-ed into, so only a plain identifier that needs no quoting is accepted. */
export const SCHEMA_NAME_PATTERN = /^[a-z_][a-z0-9_]*$/;
const MAX_IDENTIFIER_LENGTH = 63;
const VARIABLE_PATTERN = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
const FILE_KEYS = ['name', 'databaseUrl', 'schema', 'database'];

export interface FleetTarget {
  name: string;
  /** A secret: only activities hold it, and no message ever shows it. */
  url: string;
  schema?: string;
  database: string;
}

export class FleetSourceError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid fleet targets from ${source}:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'FleetSourceError';
  }
}

/** One row as it came in, with the URL under one name whichever source it is from. */
interface TargetRow {
  name: unknown;
  url: unknown;
  schema: unknown;
  database: unknown;
}

interface FieldProblem {
  field: 'name' | 'url' | 'schema' | 'database';
  message: string;
}

/** Checks one row's fields; a value is echoed only once it is known to be a valid name, so a misplaced URL never is. */
function checkTargetFields(row: TargetRow): FieldProblem[] {
  const problems: FieldProblem[] = [];
  if (row.name === undefined || row.name === null) problems.push({ field: 'name', message: 'missing: add it' });
  else if (typeof row.name !== 'string') problems.push({ field: 'name', message: 'must be text' });
  else if (row.name === '') problems.push({ field: 'name', message: 'is empty' });
  else if (!isTargetName(row.name)) problems.push({ field: 'name', message: `is not a valid target name: use ${TARGET_NAME_RULE}` });

  if (row.url === undefined || row.url === null || row.url === '') problems.push({ field: 'url', message: 'missing: add a postgres:// URL' });
  else if (typeof row.url !== 'string' || !isPostgresUrl(row.url)) {
    problems.push({ field: 'url', message: 'is not a PostgreSQL URL (expected postgres://user@host:port/database)' });
  }

  if (row.schema !== undefined && row.schema !== null && !isIdentifier(row.schema, SCHEMA_NAME_PATTERN)) {
    problems.push({ field: 'schema', message: 'is not a plain schema name: use lowercase letters, digits and _, not starting with a digit' });
  }
  if (row.database !== undefined && row.database !== null && !isIdentifier(row.database, DATABASE_NAME_PATTERN)) {
    problems.push({ field: 'database', message: 'is not a logical database name such as main or ci: use lowercase letters, digits and _' });
  }
  return problems;
}

function isPostgresUrl(text: string): boolean {
  if (!/^postgres(ql)?:\/\//.test(text)) return false;
  try {
    new URL(text);
    return true;
  } catch {
    return false;
  }
}

function isIdentifier(value: unknown, pattern: RegExp): value is string {
  return typeof value === 'string' && value.length <= MAX_IDENTIFIER_LENGTH && pattern.test(value);
}

/** Only for a row checkTargetFields found no problem in. */
function toTarget(row: TargetRow): FleetTarget {
  const target: FleetTarget = { name: row.name as string, url: row.url as string, database: (row.database as string | null | undefined) ?? MAIN_DATABASE };
  if (row.schema !== undefined && row.schema !== null) target.schema = row.schema as string;
  return target;
}

/**
 * Reads a target file: a YAML list of `{name, databaseUrl, schema?, database?}`, in rollout order. `${VAR}` in
 * databaseUrl is expanded from `env`. `label` names the file in every problem.
 */
export function parseTargetFile(text: string, label: string, env: Record<string, string | undefined>): FleetTarget[] {
  const source = readYamlSource(text);
  if (source.syntaxErrors.length > 0) throw new FleetSourceError(label, source.syntaxErrors.map((error) => `${label}: ${error}`));
  const rows = source.data ?? [];
  if (!Array.isArray(rows)) {
    throw new FleetSourceError(label, [`${label}: ${source.lineOf([])}: expected a YAML list of targets: - {name: cell-001, databaseUrl: \${CELL_001_URL}}`]);
  }
  if (rows.length === 0) throw new FleetSourceError(label, [`${label}: lists no targets; add at least one {name, databaseUrl}`]);

  const problems: string[] = [];
  const targets: FleetTarget[] = [];
  const firstLineOfName = new Map<string, string>();
  rows.forEach((row: unknown, index) => {
    const at = (key?: string) => `${label}: ${source.lineOf(key ? [index, key] : [index])}: targets[${index}]${key ? `.${key}` : ''}`;
    if (!row || typeof row !== 'object' || Array.isArray(row)) {
      problems.push(`${at()}: expected a map {name, databaseUrl, schema?, database?}`);
      return;
    }
    const fields = row as Record<string, unknown>;
    for (const key of Object.keys(fields).filter((key) => !FILE_KEYS.includes(key))) {
      problems.push(`${label}: ${source.lineOfKey([index], key)}: targets[${index}].${key}: unknown key (check its spelling)`);
    }
    const expanded = expandUrl(fields.databaseUrl, env);
    const candidate: TargetRow = { name: fields.name, url: expanded.url, schema: fields.schema, database: fields.database };
    const rowProblems = checkTargetFields(candidate)
      .filter((problem) => !(problem.field === 'url' && expanded.missing.length > 0))
      .map((problem) => `${at(problem.field === 'url' ? 'databaseUrl' : problem.field)}: ${problem.message}`);
    for (const name of expanded.missing) {
      rowProblems.push(`${at('databaseUrl')}: environment variable ${name} is not set; export it where the worker runs`);
    }
    if (typeof fields.name === 'string' && isTargetName(fields.name)) {
      const first = firstLineOfName.get(fields.name);
      if (first) rowProblems.push(`${at('name')}: duplicate target "${fields.name}" (also ${first})`);
      else firstLineOfName.set(fields.name, source.lineOf([index, 'name']));
    }
    problems.push(...rowProblems);
    if (rowProblems.length === 0) targets.push(toTarget(candidate));
  });
  if (problems.length > 0) throw new FleetSourceError(label, problems);
  return targets;
}

function expandUrl(value: unknown, env: Record<string, string | undefined>): { url: unknown; missing: string[] } {
  if (typeof value !== 'string') return { url: value, missing: [] };
  const missing: string[] = [];
  const url = value.replace(VARIABLE_PATTERN, (_whole, name: string) => {
    const resolved = env[name];
    if (resolved !== undefined && resolved !== '') return resolved;
    missing.push(name);
    return '';
  });
  return { url, missing };
}

/** A registry query must return `name` and `url`; `schema` and `database` are optional, other columns are ignored. */
export function missingRegistryColumns(columns: readonly string[]): string[] {
  return ['name', 'url'].filter((column) => !columns.includes(column));
}

/** Validates the rows a registry query returned, in the query's order (its ORDER BY). `label` names the source. */
export function parseRegistryRows(rows: readonly Record<string, unknown>[], columns: readonly string[], label: string): FleetTarget[] {
  const missing = missingRegistryColumns(columns);
  if (missing.length > 0) {
    const got = columns.length > 0 ? columns.join(', ') : 'no columns';
    throw new FleetSourceError(label, [`the registry query returned ${got}; it must return columns name and url (and optionally schema, database)`]);
  }
  if (rows.length === 0) throw new FleetSourceError(label, ['the registry query returned no targets; check its WHERE clause']);

  const problems: string[] = [];
  const targets: FleetTarget[] = [];
  const firstRowOfName = new Map<string, number>();
  rows.forEach((row, index) => {
    const rowNumber = index + 1;
    const validName = typeof row.name === 'string' && isTargetName(row.name) ? row.name : undefined;
    const at = `registry row ${rowNumber}${validName ? ` (name "${validName}")` : ''}`;
    const candidate: TargetRow = { name: row.name, url: row.url, schema: row.schema, database: row.database };
    const rowProblems = checkTargetFields(candidate).map(
      (problem) => `${at}: ${problem.field} ${problem.message}`,
    );
    if (validName) {
      const first = firstRowOfName.get(validName);
      if (first) rowProblems.push(`${at}: duplicate name, also row ${first}`);
      else firstRowOfName.set(validName, rowNumber);
    }
    problems.push(...rowProblems);
    if (rowProblems.length === 0) targets.push(toTarget(candidate));
  });
  if (problems.length > 0) throw new FleetSourceError(label, problems);
  return targets;
}
