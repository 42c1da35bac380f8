// Migration files: <14-digit UTC version>_<name>.sql with dbmate-style `-- migrate:up` / `-- migrate:down` sections.
import { parseDuration } from './duration';
import { DATABASE_NAME_PATTERN } from './targets';
export const MIGRATION_FILE_PATTERN = /^(\d{14})_([A-Za-z0-9_]+)\.sql$/;
/** The name part of MIGRATION_FILE_PATTERN in words, for messages. */
export const MIGRATION_NAME_RULE = 'letters, digits and underscores';
const SECTION_PATTERN = /^--\s*migrate:(up|down)\b(.*)$/;
const KNOWN_OPTIONS = new Set(['transaction']);
/** `-- dbchange:<directive> <value>` lines: per-file settings that travel with the file and its checksum. */
const DIRECTIVE_PATTERN = /^--\s*dbchange:([a-z-]+)\s*(.*)$/;
const DIRECTIVES = ['statement-timeout', 'databases', 'requires-backfill'];

export interface MigrationSource {
  version: string;
  name: string;
  fileName: string;
  /** SQL of the up section, exactly as written. */
  up: string;
  /** 1-based line of the file where the up SQL starts, to point errors at file:line. */
  upStartLine: number;
  down?: string;
  /** false when the header says `transaction:false` (e.g. CREATE INDEX CONCURRENTLY). */
  transactional: boolean;
  /** `-- dbchange:statement-timeout 2h`: this file's statements may run that long instead of lockRetry.statementTimeout. */
  statementTimeoutMs?: number;
  /** `-- dbchange:databases ci,sec`: runs only there; every other database records it as done without running it. */
  databases?: string[];
  /** `-- dbchange:requires-backfill NAME`: runs on an environment only once that backfill finished there. */
  requiresBackfill?: string[];
}

export class MigrationFileError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'MigrationFileError';
  }
}

/** Splits a file name into version and name, or says how to fix it. */
export function parseMigrationFileName(fileName: string): { version: string; name: string } {
  const match = MIGRATION_FILE_PATTERN.exec(fileName);
  if (!match) {
    throw new MigrationFileError(
      fileName,
      'bad migration file name; expected <14-digit UTC timestamp>_<name>.sql, e.g. 20230109100044_cleanup_web_hook_calls_rename.sql',
    );
  }
  const version = match[1];
  const [year, month, day, hour, minute, second] = [0, 4, 6, 8, 10, 12].map((start, index) => Number(version.slice(start, index === 0 ? 4 : start + 2)));
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  const roundTrips =
    date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day &&
    date.getUTCHours() === hour && date.getUTCMinutes() === minute && date.getUTCSeconds() === second;
  if (!roundTrips) {
    throw new MigrationFileError(fileName, `version ${version} is not a UTC timestamp (YYYYMMDDhhmmss)`);
  }
  return { version, name: match[2] };
}

/** Parses the text of one migration file. */
export function parseMigrationSource(fileName: string, text: string): MigrationSource {
  const { version, name } = parseMigrationFileName(fileName);
  const lines = text.split(/\r?\n/);
  const sections: { kind: 'up' | 'down'; options: string; headerLine: number }[] = [];
  lines.forEach((line, index) => {
    const match = SECTION_PATTERN.exec(line.trim());
    if (match) sections.push({ kind: match[1] as 'up' | 'down', options: match[2].trim(), headerLine: index + 1 });
  });

  const ups = sections.filter((section) => section.kind === 'up');
  if (ups.length === 0) throw new MigrationFileError(fileName, 'no "-- migrate:up" section; put the SQL to apply under that line');
  if (ups.length > 1) throw new MigrationFileError(fileName, `"-- migrate:up" appears ${ups.length} times (lines ${ups.map((s) => s.headerLine).join(', ')})`);
  if (sections.filter((section) => section.kind === 'down').length > 1) {
    throw new MigrationFileError(fileName, '"-- migrate:down" appears more than once');
  }

  const bodyOf = (index: number) => {
    const start = sections[index].headerLine; // 0-based index of the first body line
    const end = index + 1 < sections.length ? sections[index + 1].headerLine - 1 : lines.length;
    return lines.slice(start, end).join('\n');
  };
  const upIndex = sections.indexOf(ups[0]);
  const downIndex = sections.findIndex((section) => section.kind === 'down');
  const up = bodyOf(upIndex);
  if (stripComments(up).trim() === '') throw new MigrationFileError(fileName, 'the "-- migrate:up" section has no SQL');

  return {
    version,
    name,
    fileName,
    up,
    upStartLine: ups[0].headerLine + 1,
    down: downIndex >= 0 ? bodyOf(downIndex) : undefined,
    transactional: parseTransactionOption(fileName, ups[0].options),
    ...parseDirectives(fileName, lines),
  };
}

type Directives = Pick<MigrationSource, 'statementTimeoutMs' | 'databases' | 'requiresBackfill'>;

function parseDirectives(fileName: string, lines: string[]): Directives {
  const directives: Directives = {};
  lines.forEach((line, index) => {
    const match = DIRECTIVE_PATTERN.exec(line.trim());
    if (!match) return;
    const [, name, value] = match;
    const where = `line ${index + 1}: -- dbchange:${name}`;
    if (!DIRECTIVES.includes(name)) throw new MigrationFileError(fileName, `${where}: unknown directive; known: ${DIRECTIVES.map((known) => `dbchange:${known}`).join(', ')}`);
    if (name === 'databases') directives.databases = parseDatabaseList(fileName, where, value);
    else if (name === 'requires-backfill') directives.requiresBackfill = [...new Set([...(directives.requiresBackfill ?? []), parseBackfillName(fileName, where, value)])];
    else directives.statementTimeoutMs = parseStatementTimeout(fileName, where, value);
  });
  return directives;
}

/** One backfill's name, as its file `<version>_<name>.yaml` spells it. */
function parseBackfillName(fileName: string, where: string, value: string): string {
  const name = value.trim();
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new MigrationFileError(fileName, `${where}: expected one backfill's name (its file without version and .yaml, e.g. backfill_ci_runners), got "${name}"`);
  return name;
}

function parseStatementTimeout(fileName: string, where: string, value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0) throw new MigrationFileError(fileName, `${where}: expected a duration above 0 such as 30m or 2h, got "${value.trim()}"`);
  return ms;
}

/** `ci` or `ci,sec` (spaces allowed): database names as dbchange.yaml's `databases:` keys them. */
function parseDatabaseList(fileName: string, where: string, value: string): string[] {
  const names = value.split(/[\s,]+/).filter(Boolean);
  const bad = names.filter((name) => !DATABASE_NAME_PATTERN.test(name));
  if (names.length === 0 || bad.length > 0) {
    throw new MigrationFileError(fileName, `${where}: expected database names as dbchange.yaml's databases: lists them, e.g. "-- dbchange:databases ci" or "ci,sec"${bad.length > 0 ? `; not a name: ${bad.join(', ')}` : ''}`);
  }
  return [...new Set(names)];
}

function parseTransactionOption(fileName: string, options: string): boolean {
  let transactional = true;
  for (const option of options.split(/\s+/).filter(Boolean)) {
    const [key, value] = option.split(':');
    if (!KNOWN_OPTIONS.has(key) || (value !== 'true' && value !== 'false')) {
      throw new MigrationFileError(fileName, `unknown option "${option}" on "-- migrate:up"; the only option is transaction:false`);
    }
    transactional = value === 'true';
  }
  return transactional;
}

function stripComments(sql: string): string {
  return sql.replace(/--.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
}

/** Refuses two files with one version: the ledger could not tell them apart. */
export function checkUniqueVersions(sources: { version: string; fileName: string }[]): void {
  const byVersion = new Map<string, string>();
  for (const source of sources) {
    const existing = byVersion.get(source.version);
    if (existing) {
      throw new MigrationFileError(source.fileName, `duplicate version ${source.version}: also used by ${existing}; give one of them a new timestamp`);
    }
    byVersion.set(source.version, source.fileName);
  }
}
