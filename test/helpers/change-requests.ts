// Change request tests: the example app's schema on test databases, CR files, and database snapshots.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyRegularMigrations, runSqlFile } from '../../examples/demo/deploy';
import type { TestProject } from './project';

export const EXAMPLES = fileURLToPath(new URL('../../examples', import.meta.url));
export const SEED_000_CR = join(EXAMPLES, 'change-requests/000-drop-premature-fk.yaml');
export const SEED_003_CR = join(EXAMPLES, 'change-requests/003-remove-fk-with-rollback-plan.yaml');

/** The example app after its deploy: regular migrations and the rows it wrote (as `npm run demo` sets it up). */
export async function loadDemoSchema(url: string): Promise<void> {
  await applyRegularMigrations(url, join(EXAMPLES, 'db/migrate'));
  await runSqlFile(url, join(EXAMPLES, 'db/seed.sql'));
}

export function writeChangeRequest(project: TestProject, name: string, text: string): string {
  const file = join(project.dir, name);
  writeFileSync(file, text);
  return file;
}

/** Schema and data exactly as pg_dump sees them: equal dumps mean an unchanged database. */
export function dumpDatabase(url: string, options: { withoutLedgers?: boolean } = {}): string {
  const exclude = options.withoutLedgers ? ['--exclude-table', 'dbchange_*'] : [];
  return execFileSync('pg_dump', ['--no-owner', '--no-privileges', ...exclude, '--dbname', url], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => !line.startsWith('-- Dumped') && !line.startsWith('\\restrict') && !line.startsWith('\\unrestrict'))
    .join('\n');
}
