// A throwaway dbchange project: dbchange.yaml, a post-deploy folder, and one fresh database per environment.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, type DbChangeConfig } from '../../core/config';
import { createDatabase } from './postgres';

export interface ProjectSpec {
  environments: { name: string; qa?: string; approvalRoles?: string[]; approvalTimeout?: string }[];
  /** file name → file text */
  migrations: Record<string, string>;
  approvers?: Record<string, string[]>;
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
  const databases = await Promise.all(spec.environments.map(() => createDatabase(prefix, spec.adminUrl)));
  const withPassword = (url: string) => {
    if (!spec.password) return url;
    const parsed = new URL(url);
    parsed.password = spec.password;
    return parsed.toString();
  };
  const urls = Object.fromEntries(spec.environments.map((environment, index) => [environment.name, withPassword(databases[index].url)]));

  const yaml = [
    'migrations:',
    '  postDeploy: db/post_migrate',
    ...(spec.outOfOrder ? [`  outOfOrder: ${spec.outOfOrder}`] : []),
    'environments:',
    ...spec.environments.flatMap((environment) => [
      `  - name: ${environment.name}`,
      `    databaseUrl: ${urls[environment.name]}`,
      ...(environment.qa ? [`    qa: { command: ${JSON.stringify(environment.qa)}, timeout: 1m }`] : []),
      ...(environment.approvalRoles
        ? [`    approval: { roles: [${environment.approvalRoles.join(', ')}], timeout: ${environment.approvalTimeout ?? '1h'} }`]
        : []),
    ]),
    'approvers:',
    ...Object.entries(spec.approvers ?? DEFAULT_APPROVERS).map(([user, roles]) => `  ${user}: [${roles.join(', ')}]`),
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
