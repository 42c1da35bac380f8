// Pending = in the post-deploy folder, absent from the environment's schema_migrations.
export interface FileState {
  version: string;
  name: string;
  fileName: string;
  checksum: string;
}

export interface EditedMigration {
  version: string;
  fileName: string;
  appliedChecksum: string;
  fileChecksum: string;
}

export interface PendingReport<T extends FileState> {
  pending: T[];
  /** Applied files whose bytes changed since they ran: the change never reached this database. */
  edited: EditedMigration[];
}

export function comparePending<T extends FileState>(
  files: T[],
  applied: { versions: ReadonlySet<string>; checksums: ReadonlyMap<string, string> },
): PendingReport<T> {
  const pending: T[] = [];
  const edited: EditedMigration[] = [];
  for (const file of files) {
    if (!applied.versions.has(file.version)) {
      pending.push(file);
      continue;
    }
    const appliedChecksum = applied.checksums.get(file.version);
    if (appliedChecksum && appliedChecksum !== file.checksum) {
      edited.push({ version: file.version, fileName: file.fileName, appliedChecksum, fileChecksum: file.checksum });
    }
  }
  return { pending, edited };
}

export function describeEdited(environment: string, edited: EditedMigration[]): string {
  const files = edited.map((item) => item.fileName).join(', ');
  return (
    `corrupted migrations: ${files} changed after ${edited.length === 1 ? 'it was' : 'they were'} applied on ${environment}; ` +
    'restore the applied version and put the change in a new migration'
  );
}
