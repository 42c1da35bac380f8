// A throwaway dbchange project: dbchange.yaml, a post-deploy folder, and fresh databases for each environment.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, type DbChangeConfig } from '../../core/config';
import { targetAddress } from '../../core/targets';
import { createDatabase } from './postgres';

export interface ProjectSpec {
  /** `databases`: names of several databases (e.g. main, ci); without it, one database (databaseUrl). */
  environments: { name: string; qa?: string; approvalRoles?: string[]; approvalTimeout?: string; databases?: string[] }[];
  /** file name → file text */
  migrations: Record<string, string>;
  /** Backfill files (file name → text), written to db/backfills, which dbchange.yaml then names. */
  backfills?: Record<string, string>;
  approvers?: Record<string, string[]>;
  /** Lines of YAML written as they are after the approvers (e.g. approver keys, approvals:, gateways:); replaces `approvers`. */
  approversYaml?: string[];
  lockTimeout?: string;
  maxWait?: string;
  statementTimeout?: string;
  statementTimeoutRetries?: number;
  maxAttempts?: number;
  recheckInterval?: string;
  webhookUrl?: string;
  changeLocks?: { start: string; end: string; reason: string }[];
  /** The running application's queries, written to app-queries.sql and checked by the compatibility gate. */
  appQueries?: string;
  /** migrations.outOfOrder: what a pending version older than an applied one does. */
  outOfOrder?: 'allow' | 'warn' | 'refuse';
  /** gates.drift: what promoting past drifted regular migrations does. */
  drift?: 'refuse' | 'warn';
  /** Put into every database URL (trust auth ignores it), so tests can prove it never leaks. */
  password?: string;
  changeRequests?: { rollbackWindow?: string; approvalTimeout?: string };
  /** Create the databases on this server instead of the machine's PostgreSQL. */
  adminUrl?: string;
}

export interface TestProject {
  dir: string;
  configPath: string;
  config: DbChangeConfig;
  /** By database address: the environment's name, or `environment/database` for one of several. */
  urls: Record<string, string>;
  writeMigration(fileName: string, text: string): void;
  /** Re-reads dbchange.yaml, e.g. after writing a migration. */
  reload(): DbChangeConfig;
  cleanup(): Promise<void>;
}

export const DEFAULT_APPROVERS = { alice: ['release-manager', 'eoc'], bob: ['manager'], carol: ['release-manager'] };

export async function createProject(prefix: string, spec: ProjectSpec): Promise<TestProject> {
  const dir = mkdtempSync(join(tmpdir(), `dbchange-${prefix}-`));
  const migrationsDir = join(dir, 'db/post_migrate');
  mkdirSync(migrationsDir, { recursive: true });
  const addresses = spec.environments.flatMap((environment) =>
    environment.databases ? environment.databases.map((database) => targetAddress(environment.name, database, environment.databases!.length)) : [environment.name],
  );
  const databases = await Promise.all(addresses.map(() => createDatabase(prefix, spec.adminUrl)));
  const withPassword = (url: string) => {
    if (!spec.password) return url;
    const parsed = new URL(url);
    parsed.password = spec.password;
    return parsed.toString();
  };
  const urls = Object.fromEntries(addresses.map((address, index) => [address, withPassword(databases[index].url)]));
  const databaseLines = (environment: ProjectSpec['environments'][number]) =>
    environment.databases
      ? ['    databases:', ...environment.databases.map((database) => `      ${database}: ${urls[targetAddress(environment.name, database, environment.databases!.length)]}`)]
      : [`    databaseUrl: ${urls[environment.name]}`];

  const yaml = [
    'migrations:',
    '  postDeploy: db/post_migrate',
    ...(spec.backfills ? ['  backfills: db/backfills'] : []),
    ...(spec.outOfOrder ? [`  outOfOrder: ${spec.outOfOrder}`] : []),
    'environments:',
    ...spec.environments.flatMap((environment) => [
      `  - name: ${environment.name}`,
      ...databaseLines(environment),
      ...(environment.qa ? [`    qa: { command: ${JSON.stringify(environment.qa)}, timeout: 1m }`] : []),
      ...(environment.approvalRoles
        ? [`    approval: { roles: [${environment.approvalRoles.join(', ')}], timeout: ${environment.approvalTimeout ?? '1h'} }`]
        : []),
    ]),
    ...(spec.approversYaml ?? ['approvers:', ...Object.entries(spec.approvers ?? DEFAULT_APPROVERS).map(([user, roles]) => `  ${user}: [${roles.join(', ')}]`)]),
    `lockRetry: { lockTimeout: ${spec.lockTimeout ?? '200ms'}, statementTimeout: ${spec.statementTimeout ?? '1m'}, maxWait: ${spec.maxWait ?? '5m'}` +
      `${spec.statementTimeoutRetries !== undefined ? `, statementTimeoutRetries: ${spec.statementTimeoutRetries}` : ''}${spec.maxAttempts !== undefined ? `, maxAttempts: ${spec.maxAttempts}` : ''} }`,
    `productionChecks: { recheckInterval: ${spec.recheckInterval ?? '1s'} }`,
    ...(spec.appQueries || spec.drift
      ? ['gates:', ...(spec.appQueries ? ['  compatibility: { queries: app-queries.sql }'] : []), ...(spec.drift ? [`  drift: ${spec.drift}`] : [])]
      : []),
    ...(spec.webhookUrl ? ['notifications:', `  webhookUrl: ${spec.webhookUrl}`] : []),
    ...(spec.changeRequests
      ? ['changeRequests:', `  rollbackWindow: ${spec.changeRequests.rollbackWindow ?? '24h'}`, `  approvalTimeout: ${spec.changeRequests.approvalTimeout ?? '24h'}`]
      : []),
    ...(spec.changeLocks ? ['changeLocks:', ...spec.changeLocks.map((lock) => `  - { start: "${lock.start}", end: "${lock.end}", reason: ${JSON.stringify(lock.reason)} }`)] : []),
  ].join('\n');
  const configPath = join(dir, 'dbchange.yaml');
  writeFileSync(configPath, `${yaml}\n`);
  for (const [fileName, text] of Object.entries(spec.migrations)) writeFileSync(join(migrationsDir, fileName), text);
  if (spec.backfills) {
    mkdirSync(join(dir, 'db/backfills'), { recursive: true });
    for (const [fileName, text] of Object.entries(spec.backfills)) writeFileSync(join(dir, 'db/backfills', fileName), text);
  }
  if (spec.appQueries) writeFileSync(join(dir, 'app-queries.sql'), spec.appQueries);

  const reload = () => parseConfig(yaml, configPath, {}, dir);
  return {
    dir,
    configPath,
    config: reload(),
    urls,
    writeMigration: (fileName, text) => writeFileSync(join(migrationsDir, fileName), text),
    reload,
    async cleanup() {
      await Promise.all(databases.map((database) => database.drop()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function migration(up: string, options: { transaction?: boolean; down?: string } = {}): string {
  const header = options.transaction === false ? '-- migrate:up transaction:false' : '-- migrate:up';
  return `${header}\n${up}\n\n-- migrate:down\n${options.down ?? ''}\n`;
}
