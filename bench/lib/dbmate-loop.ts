// The baseline: what users run today over a fleet, a sequential shell loop of `dbmate up`, one target at a time.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { FleetTargetRow } from './fleet-targets';
import { REPO_ROOT } from './paths';

const DBMATE = join(REPO_ROOT, 'node_modules/.bin/dbmate');

/** `for t in targets; do dbmate --url ... up; done`, stopping at the first failure as `set -e` would. Returns wall ms. */
export async function runDbmateLoop(targets: FleetTargetRow[], migrationsDir: string): Promise<number> {
  const started = performance.now();
  for (const target of targets) await dbmateUp(dbmateUrl(target), migrationsDir);
  return performance.now() - started;
}

/** dbmate keeps schema_migrations in the first schema of search_path; the local server does not speak TLS. */
function dbmateUrl(target: FleetTargetRow): string {
  const url = new URL(target.url);
  url.searchParams.set('sslmode', 'disable');
  if (target.schema) url.searchParams.set('search_path', target.schema);
  return url.toString();
}

function dbmateUp(url: string, migrationsDir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(DBMATE, ['--url', url, '--migrations-dir', migrationsDir, '--no-dump-schema', 'up'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`dbmate exited ${code}: ${stderr.slice(-1_000)}`))));
  });
}
