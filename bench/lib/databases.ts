// Throwaway databases and dbchange projects for benchmark runs.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { parseConfig, type DbChangeConfig } from '../../core/config';

export interface BenchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

export async function createDatabase(adminUrl: string, prefix: string): Promise<BenchDatabase> {
  const name = `dbchange_bench_${prefix}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`;
  await withClient(adminUrl, (client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => withClient(adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

export async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export interface BenchProject {
  dir: string;
  migrationsDir: string;
  configPath: string;
  config: DbChangeConfig;
  cleanup(): void;
}

/** A one-environment dbchange project on `url` whose post-deploy folder holds `migrations` (file name → text). */
export function writeProject(environment: string, url: string, migrations: Record<string, string>, lockTimeout = '200ms', approvers: Record<string, string[]> = {}): BenchProject {
  return writeProjectOf({ [environment]: url }, migrations, [
    `lockRetry: { lockTimeout: ${lockTimeout}, statementTimeout: 5m, maxWait: 10m }`,
    ...(Object.keys(approvers).length ? ['approvers:', ...Object.entries(approvers).map(([user, roles]) => `  ${user}: [${roles.join(', ')}]`)] : []),
  ]);
}

/** A project over `environments` (name → database URL, in order), with `extra` lines of dbchange.yaml. */
export function writeProjectOf(environments: Record<string, string>, migrations: Record<string, string>, extra: string[] = []): BenchProject {
  const dir = mkdtempSync(join(tmpdir(), 'dbchange-bench-'));
  const migrationsDir = join(dir, 'db/post_migrate');
  mkdirSync(migrationsDir, { recursive: true });
  for (const [fileName, text] of Object.entries(migrations)) writeFileSync(join(migrationsDir, fileName), text);
  const yaml = [
    'migrations:',
    '  postDeploy: db/post_migrate',
    'environments:',
    ...Object.entries(environments).flatMap(([name, url]) => [`  - name: ${name}`, `    databaseUrl: ${url}`]),
    ...extra,
    '',
  ].join('\n');
  const configPath = join(dir, 'dbchange.yaml');
  writeFileSync(configPath, yaml);
  return { dir, migrationsDir, configPath, config: parseConfig(yaml, configPath, {}, dir), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function migrationText(up: string): string {
  return `-- migrate:up\n${up}\n\n-- migrate:down\n`;
}

/** 14-digit versions, one a second from a fixed start, so files sort in order. */
export function versionAt(index: number): string {
  const base = Date.UTC(2024, 0, 1);
  return new Date(base + index * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14);
}
