// `dbchange new`: the name and text of a new migration file, checked by the same rule the loader reads files with.
import { MIGRATION_FILE_PATTERN, MIGRATION_NAME_RULE, MigrationFileError, parseMigrationFileName } from './migration-files';

/** dbmate's template: the up section to write, the down section to undo it. */
export const NEW_MIGRATION_TEXT = '-- migrate:up\n\n\n-- migrate:down\n\n';

/** YYYYMMDDhhmmss in UTC: the version of a migration written at `at`. */
export function migrationVersion(at: Date): string {
  return at.toISOString().replace(/\D/g, '').slice(0, 14);
}

/**
 * The file name of a new migration called `name`: versioned at `at`, or at the first later second that no file in
 * `existingFileNames` uses (both folders share schema_migrations, so a version may appear only once in them).
 */
export function newMigrationFileName(name: string, at: Date, existingFileNames: readonly string[]): string {
  const taken = new Set(existingFileNames.map((fileName) => MIGRATION_FILE_PATTERN.exec(fileName)?.[1]).filter(Boolean));
  for (let time = Math.floor(at.getTime() / 1000) * 1000; ; time += 1000) {
    const version = migrationVersion(new Date(time));
    if (!taken.has(version)) return checkedFileName(name, version);
  }
}

/** The file name, if the loader would read it; otherwise a MigrationFileError about the name the person typed. */
function checkedFileName(name: string, version: string): string {
  const fileName = `${version}_${name}.sql`;
  try {
    parseMigrationFileName(fileName);
  } catch (error) {
    if (!(error instanceof MigrationFileError)) throw error;
    throw new MigrationFileError(name, `not a migration name: use ${MIGRATION_NAME_RULE}, e.g. add_index`);
  }
  return fileName;
}
