// A throwaway fleet project: one database whose schemas are the targets (or a registry table that lists them),
// a dbchange.yaml with a fleet environment, and post-deploy migrations.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../core/config-file';
import type { DbChangeConfig } from '../../core/config';
import { createDatabase, query } from './postgres';
import { DEFAULT_APPROVERS } from './project';

export interface FleetSpec {
  environment: string;
  targets: string[];
  migrations: Record<string, string>;
  waves?: string;
  concurrency?: number;
  haltAfterFailures?: number;
  approvalRoles?: string[];
  /** List the targets with a registry query (a table `cells` in the same database) instead of a file. */
  registry?: boolean;
  /** Put into every target's URL (trust auth ignores it), so tests can prove it never leaks. */
  password?: string;
  webhookUrl?: string;
}

export interface FleetProject {
  dir: string;
  configPath: string;
  config: DbChangeConfig;
  /** The database that holds every target's schema (and the registry table). */
  url: string;
  /** Rows of the registry table: name → url (a registry project only). */
  register(name: string, url?: string): Promise<void>;
  /** What a target's schema_migrations holds, or null when it has none. */
  versions(target: string): Promise<string[] | null>;
  cleanup(): Promise<void>;
}

export async function createFleetProject(prefix: string, spec: FleetSpec): Promise<FleetProject> {
  const dir = mkdtempSync(join(tmpdir(), `dbchange-${prefix}-`));
  mkdirSync(join(dir, 'db/post_migrate'), { recursive: true });
  for (const [fileName, text] of Object.entries(spec.migrations)) writeFileSync(join(dir, 'db/post_migrate', fileName), text);
  const database = await createDatabase(prefix);
  const targetUrl = spec.password ? withPassword(database.url, spec.password) : database.url;
  for (const target of spec.targets) await query(database.url, `CREATE SCHEMA ${schemaOf(target)}`);
  const register = async (name: string, url = targetUrl) => {
    await query(database.url, `INSERT INTO public.cells (name, url, schema) VALUES ($1, $2, $3)`, [name, url, schemaOf(name)]);
  };
  if (spec.registry) {
    await query(database.url, 'CREATE TABLE public.cells (position serial, name text, url text, schema text)');
    for (const target of spec.targets) await register(target);
  } else {
    writeFileSync(join(dir, 'targets.yaml'), spec.targets.map((target) => `- { name: ${target}, databaseUrl: "${targetUrl}", schema: ${schemaOf(target)} }`).join('\n') + '\n');
  }
  const source = spec.registry
    ? `{ query: "SELECT name, url, schema FROM public.cells ORDER BY position", registryUrl: "${database.url}" }`
    : '{ file: targets.yaml }';
  const yaml = [
    'migrations:',
    '  postDeploy: db/post_migrate',
    'environments:',
    `  - name: ${spec.environment}`,
    '    fleet:',
    `      source: ${source}`,
    `      waves: ${spec.waves ?? '[{count: 1}, {percent: 100}]'}`,
    `      concurrency: ${spec.concurrency ?? 4}`,
    `      haltAfterFailures: ${spec.haltAfterFailures ?? 1}`,
    ...(spec.approvalRoles ? [`      approvalBetweenWaves: { roles: [${spec.approvalRoles.join(', ')}] }`] : []),
    'approvers:',
    ...Object.entries(DEFAULT_APPROVERS).map(([user, roles]) => `  ${user}: [${roles.join(', ')}]`),
    ...(spec.webhookUrl ? ['notifications:', `  webhookUrl: ${spec.webhookUrl}`] : []),
    'lockRetry: { lockTimeout: 200ms, statementTimeout: 1m, maxWait: 5m }',
    'productionChecks: { recheckInterval: 1s }',
  ].join('\n');
  const configPath = join(dir, 'dbchange.yaml');
  writeFileSync(configPath, `${yaml}\n`);
  return {
    dir,
    configPath,
    config: loadConfig(configPath, {}),
    url: database.url,
    register,
    async versions(target) {
      const [found] = await query<{ t: string | null }>(database.url, `SELECT to_regclass('${schemaOf(target)}.schema_migrations')::text AS t`);
      if (!found.t) return null;
      return (await query<{ version: string }>(database.url, `SELECT version FROM ${schemaOf(target)}.schema_migrations ORDER BY version`)).map((row) => row.version);
    },
    async cleanup() {
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function withPassword(url: string, password: string): string {
  const parsed = new URL(url);
  parsed.password = password;
  return parsed.toString();
}

/** Target cell-07 lives in schema cell_07. */
export function schemaOf(target: string): string {
  return target.replace(/[^a-z0-9_]/g, '_');
}
