// Reads a migrations folder into parsed, checksummed migrations, sorted by version.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkUniqueVersions, MigrationFileError, parseMigrationSource, type MigrationSource } from './migration-files';

export interface MigrationFile extends MigrationSource {
  path: string;
  /** sha256 of the file's bytes: an applied file whose checksum changed was edited after it ran. */
  checksum: string;
}

export function checksumOf(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function readMigrationDir(dir: string): MigrationFile[] {
  if (!existsSync(dir)) throw new MigrationFileError(dir, 'migrations folder not found; check migrations.postDeploy in dbchange.yaml');
  const migrations = readdirSync(dir)
    .filter((fileName) => fileName.endsWith('.sql'))
    .sort()
    .map((fileName) => {
      const path = join(dir, fileName);
      const text = readFileSync(path, 'utf8');
      return { ...parseMigrationSource(fileName, text), path, checksum: checksumOf(text) };
    });
  checkUniqueVersions(migrations);
  return migrations.sort((a, b) => a.version.localeCompare(b.version));
}
