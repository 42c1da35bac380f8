// A throwaway dbchange project whose one environment is a fleet: dbchange.yaml, the target file, and the migrations
// that both dbchange and the dbmate loop apply (dbmate's `-- migrate:up` sections are what dbchange reads too).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrationText, versionAt } from './databases';
import { targetsYaml, type FleetTargetRow } from './fleet-targets';

export const FLEET_ENVIRONMENT = 'tenants';

/** Three small, typical tenant migrations: a table, a column, a second table referencing the first. */
export const FLEET_MIGRATIONS: Record<string, string> = {
  [`${versionAt(0)}_create_accounts.sql`]: migrationText('CREATE TABLE accounts (id bigint PRIMARY KEY, name text NOT NULL);'),
  [`${versionAt(1)}_add_accounts_created_at.sql`]: migrationText('ALTER TABLE accounts ADD COLUMN created_at timestamptz;'),
  [`${versionAt(2)}_create_invoices.sql`]: migrationText('CREATE TABLE invoices (id bigint PRIMARY KEY, account_id bigint NOT NULL REFERENCES accounts (id), total_cents bigint NOT NULL);'),
};

export interface FleetProject {
  dir: string;
  configPath: string;
  migrationsDir: string;
  cleanup(): void;
}

export function writeFleetProject(targets: FleetTargetRow[], concurrency: number): FleetProject {
  const dir = mkdtempSync(join(tmpdir(), 'dbchange-bench-fleet-'));
  const migrationsDir = join(dir, 'db/post_migrate');
  mkdirSync(migrationsDir, { recursive: true });
  for (const [fileName, text] of Object.entries(FLEET_MIGRATIONS)) writeFileSync(join(migrationsDir, fileName), text);
  writeFileSync(join(dir, 'targets.yaml'), targetsYaml(targets));
  const configPath = join(dir, 'dbchange.yaml');
  writeFileSync(
    configPath,
    [
      'migrations:',
      '  postDeploy: db/post_migrate',
      'environments:',
      `  - name: ${FLEET_ENVIRONMENT}`,
      '    fleet:',
      '      source: { file: targets.yaml }',
      // The rollout: one canary, then 10 % of the fleet, then the rest.
      '      waves: [{count: 1}, {percent: 10}, {percent: 100}]',
      `      concurrency: ${concurrency}`,
      '      haltAfterFailures: 1',
      // As the other benchmarks: a short lock_timeout; nothing else holds locks on these fresh schemas.
      'lockRetry: { lockTimeout: 200ms, statementTimeout: 5m, maxWait: 10m }',
      '',
    ].join('\n'),
  );
  return { dir, configPath, migrationsDir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
