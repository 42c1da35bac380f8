// What a deploy does before the new version starts, outside dbchange: regular migrations, recorded in schema_migrations.
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { readAppliedState } from '../../activities/db';
import { readMigrationDir } from '../../core/migration-dir';

/** Applies the migrations in `dir` that `schema_migrations` lacks, in version order; returns their versions. */
export async function applyRegularMigrations(url: string, dir: string): Promise<string[]> {
  return withClient(url, async (client) => {
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version varchar PRIMARY KEY)');
    const { rows } = await client.query<{ version: string }>('SELECT version FROM schema_migrations');
    const applied = new Set(rows.map((row) => row.version));
    const versions: string[] = [];
    for (const migration of readMigrationDir(dir).filter((file) => !applied.has(file.version))) {
      if (migration.transactional) await client.query('BEGIN');
      await client.query(migration.up);
      await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [migration.version]);
      if (migration.transactional) await client.query('COMMIT');
      versions.push(migration.version);
    }
    return versions;
  });
}

/** Runs a SQL file, e.g. the rows the application wrote before this deploy. */
export async function runSqlFile(url: string, file: string): Promise<void> {
  await withClient(url, (client) => client.query(readFileSync(file, 'utf8')));
}

/** The versions among `versions` that schema_migrations does not record. */
export async function missingVersions(url: string, versions: string[]): Promise<string[]> {
  const applied = await withClient(url, readAppliedState);
  return versions.filter((version) => !applied.versions.has(version));
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'dbchange-demo-deploy' });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
