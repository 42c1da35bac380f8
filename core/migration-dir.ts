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

function sqlFileNames(dir: string): string[] {
  if (!existsSync(dir)) throw new MigrationFileError(dir, 'migrations folder not found; check migrations.postDeploy in dbchange.yaml');
  return readdirSync(dir).filter((fileName) => fileName.endsWith('.sql')).sort();
}

function readMigrationFile(dir: string, fileName: string): MigrationFile {
  const path = join(dir, fileName);
  const text = readFileSync(path, 'utf8');
  return { ...parseMigrationSource(fileName, text), path, checksum: checksumOf(text) };
}

export function readMigrationDir(dir: string): MigrationFile[] {
  const migrations = sqlFileNames(dir).map((fileName) => readMigrationFile(dir, fileName));
  checkUniqueVersions(migrations);
  return migrations.sort((a, b) => a.version.localeCompare(b.version));
}

/** The one file with this version, read alone: applying a migration need not re-read the whole folder. */
export function readMigrationVersion(dir: string, version: string): MigrationFile | undefined {
  const matches = sqlFileNames(dir).filter((fileName) => fileName.startsWith(`${version}_`));
  checkUniqueVersions(matches.map((fileName) => ({ version, fileName })));
  return matches.length === 1 ? readMigrationFile(dir, matches[0]) : undefined;
}
