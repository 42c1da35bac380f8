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

/** A version's UTC timestamp (YYYYMMDDHHMMSS) in ms: when the migration was written; undefined if it is not one. */
export function versionTime(version: string): number | undefined {
  const match = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(version);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number);
  const time = Date.UTC(year, month - 1, day, hour, minute, second);
  // Date.UTC rolls 20240231 over into March: a version that is no real time has no age.
  return new Date(time).getUTCDate() === day && month >= 1 && month <= 12 ? time : undefined;
}

/**
 * How long the oldest pending migration has waited, counted from its version (when it was written), in whole
 * seconds; 0 when nothing is pending. A version is the only start time every database agrees on without state.
 */
export function oldestPendingAgeSeconds(pending: readonly { version: string }[], now: number): number {
  const times = pending.map((file) => versionTime(file.version)).filter((time): time is number => time !== undefined);
  return times.length === 0 ? 0 : Math.max(0, Math.floor((now - Math.min(...times)) / 1000));
}
