// Backfill files (<version>_<name>.yaml in migrations.backfills) come in untrusted and leave parsed: every problem
// at once, each with its line and key.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { DEFAULT_MAX_BATCH_SIZE, DEFAULT_TARGET_BATCH_MS, missingBounds, type BackfillSpec } from './backfill';
import { ConfigError, resolveTarget, selectEnvironments, type DatabaseTarget, type DbChangeConfig } from './config';
import { parseDuration } from './duration';
import { DATABASE_NAME_PATTERN, DATABASE_NAME_RULE } from './targets';
import { describeSchemaIssues, durationText, readYamlSource } from './yaml-source';

export const BACKFILL_FILE_PATTERN = /^(\d{14})_([A-Za-z0-9_]+)\.ya?ml$/;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const TABLE_NAME = /^([A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*$/;

const backfillSchema = z.strictObject({
  table: z.string().regex(TABLE_NAME, 'a table name, optionally schema-qualified (e.g. ci_runners or ci.runners)'),
  key: z.string().regex(IDENTIFIER, 'an integer column of the table (e.g. id)'),
  database: z.string().regex(DATABASE_NAME_PATTERN, `use ${DATABASE_NAME_RULE}`).optional(),
  batch: z.string().min(1, 'the SQL of one batch, with :start and :end'),
  targetBatchDuration: durationText('500ms, 1s, 2s')
    .refine((text) => (parseDuration(text) ?? 1) > 0, 'must be above 0')
    .optional(),
  maxRowsPerSecond: z.number().int('a whole number of rows a second, e.g. 5000').positive('above 0, e.g. 5000 rows a second').optional(),
  maxBatchSize: z.number().int('a whole number of keys, e.g. 1000').positive('above 0, e.g. 1000 keys').optional(),
  pauseWhen: z
    .strictObject({
      replicationLagOver: durationText('5s, 30s, 1m').optional(),
      autovacuumOnTable: z.boolean().optional(),
      lockWaitersOver: z.number().int('a whole number of sessions, e.g. 0').min(0, '0 or more sessions').optional(),
      query: z.string().min(1, 'a query that returns one boolean, true to pause').optional(),
    })
    .optional(),
});

export interface BackfillFile extends BackfillSpec {
  path: string;
}

export class BackfillFileError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`invalid backfill ${file}:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'BackfillFileError';
  }
}

export function checksumOfBackfill(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Parses one backfill file's text; `fileName` gives the version and the name. */
export function parseBackfillFile(fileName: string, text: string, path = fileName): BackfillFile {
  const match = BACKFILL_FILE_PATTERN.exec(fileName);
  if (!match) {
    throw new BackfillFileError(fileName, ['bad backfill file name; expected <14-digit UTC timestamp>_<name>.yaml, e.g. 20241104120000_backfill_ci_runners.yaml']);
  }
  const source = readYamlSource(text);
  if (source.syntaxErrors.length > 0) throw new BackfillFileError(fileName, source.syntaxErrors);
  const parsed = backfillSchema.safeParse(source.data ?? {});
  const problems = parsed.success ? [] : describeSchemaIssues(parsed.error.issues, source);
  const batch = (source.data as { batch?: unknown } | undefined)?.batch;
  if (typeof batch === 'string') {
    const missing = missingBounds(batch);
    if (missing.length > 0) {
      problems.push(`${source.lineOf(['batch'])}: batch: the SQL lacks ${missing.map((bound) => `:${bound}`).join(' and ')}; a batch covers keys from :start (included) to :end (excluded), e.g. WHERE id >= :start AND id < :end`);
    }
  }
  if (problems.length > 0 || !parsed.success) throw new BackfillFileError(fileName, problems);
  const raw = parsed.data;
  const pauseWhen = raw.pauseWhen ?? {};
  return {
    name: match[2],
    version: match[1],
    fileName,
    path,
    checksum: checksumOfBackfill(text),
    table: raw.table,
    key: raw.key,
    batch: raw.batch,
    ...(raw.database ? { database: raw.database } : {}),
    targetBatchMs: raw.targetBatchDuration ? parseDuration(raw.targetBatchDuration)! : DEFAULT_TARGET_BATCH_MS,
    ...(raw.maxRowsPerSecond ? { maxRowsPerSecond: raw.maxRowsPerSecond } : {}),
    maxBatchSize: raw.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE,
    pauseWhen: {
      ...(pauseWhen.replicationLagOver ? { replicationLagOverMs: parseDuration(pauseWhen.replicationLagOver)! } : {}),
      ...(pauseWhen.autovacuumOnTable !== undefined ? { autovacuumOnTable: pauseWhen.autovacuumOnTable } : {}),
      ...(pauseWhen.lockWaitersOver !== undefined ? { lockWaitersOver: pauseWhen.lockWaitersOver } : {}),
      ...(pauseWhen.query ? { query: pauseWhen.query } : {}),
    },
  };
}

/** Every backfill of the folder by name; two files with one name are refused (the workflow id is per name). */
export function readBackfillDir(dir: string): BackfillFile[] {
  if (!existsSync(dir)) throw new BackfillFileError(dir, ['backfills folder not found; check migrations.backfills in dbchange.yaml']);
  const files = readdirSync(dir).filter((fileName) => /\.ya?ml$/.test(fileName)).sort();
  const parsed = files.map((fileName) => parseBackfillFile(fileName, readFileSync(join(dir, fileName), 'utf8'), join(dir, fileName)));
  const byName = new Map<string, string>();
  for (const file of parsed) {
    const other = byName.get(file.name);
    if (other) throw new BackfillFileError(file.fileName, [`the name ${file.name} is also used by ${other}; a backfill's name must be unique`]);
    byName.set(file.name, file.fileName);
  }
  return parsed;
}

/** The database of `environment` a backfill runs on: the only one, or the one its `database:` names. */
export function backfillDatabase(config: DbChangeConfig, environment: string, file: Pick<BackfillSpec, 'database' | 'fileName'>): DatabaseTarget {
  const [configured] = selectEnvironments(config, [environment]);
  if (configured.fleet) throw new ConfigError(config.path, [`environment ${environment} is a fleet; backfills run on environments with databases`]);
  if (configured.databases.length === 1 && (!file.database || file.database === configured.databases[0].database)) return configured.databases[0];
  if (!file.database) throw new ConfigError(config.path, [`environment ${environment} has several databases (${configured.databases.map((target) => target.database).join(', ')}); say which with database: in ${file.fileName}`]);
  return resolveTarget(config, `${environment}/${file.database}`);
}

/** One backfill by name, or an error that lists the ones there are. */
export function readBackfill(dir: string, name: string): BackfillFile {
  const all = readBackfillDir(dir);
  const found = all.find((file) => file.name === name);
  if (!found) throw new BackfillFileError(name, [`no backfill named ${name} in ${dir}; there are: ${all.map((file) => file.name).join(', ') || 'none'}`]);
  return found;
}
