// A pending post-deploy version older than one already applied on the same database: a late-merged branch.
export const OUT_OF_ORDER_POLICIES = ['allow', 'warn', 'refuse'] as const;
export type OutOfOrderPolicy = (typeof OUT_OF_ORDER_POLICIES)[number];

/** Rails and GitLab apply a late file, Flyway refuses it: dbchange applies it and tells the release manager. */
export const DEFAULT_OUT_OF_ORDER_POLICY: OutOfOrderPolicy = 'warn';

/** At most this many file names per environment in a status or a message; the count says how many there are. */
export const OUT_OF_ORDER_FILES_SHOWN = 10;

/** Pending on a database whose newest applied post-deploy version is newer. */
export interface OutOfOrder {
  newestApplied: string;
}

/** One environment's out-of-order versions, compact enough for a status snapshot. */
export interface OutOfOrderFinding {
  environment: string;
  newestApplied: string;
  /** The first OUT_OF_ORDER_FILES_SHOWN file names, in version order. */
  files: string[];
  count: number;
}

interface AppliedVersions {
  versions: ReadonlySet<string>;
  /** Versions dbchange's ledger recorded as applied or marked complete. */
  checksums: ReadonlyMap<string, string>;
}

/**
 * The newest post-deploy version applied on a database: one in the post-deploy folder or in dbchange's ledger.
 * Regular migrations share schema_migrations and run first at each deploy, so they do not count.
 */
export function newestAppliedPostDeploy(fileVersions: Iterable<string>, applied: AppliedVersions): string | undefined {
  const postDeploy = new Set(fileVersions);
  let newest: string | undefined;
  for (const version of applied.versions) {
    if (!postDeploy.has(version) && !applied.checksums.has(version)) continue;
    if (newest === undefined || version > newest) newest = version;
  }
  return newest;
}

/** Each pending file, marked when it is older than the newest applied post-deploy version. */
export function markOutOfOrder<T extends { version: string }>(pending: T[], newestApplied: string | undefined): (T & { outOfOrder?: OutOfOrder })[] {
  return pending.map((file) => (newestApplied !== undefined && file.version < newestApplied ? { ...file, outOfOrder: { newestApplied } } : file));
}

export function outOfOrderFinding(environment: string, pending: { fileName: string; outOfOrder?: OutOfOrder }[]): OutOfOrderFinding | undefined {
  const late = pending.filter((file) => file.outOfOrder);
  if (late.length === 0) return undefined;
  return {
    environment,
    // All late files of one database are older than the same newest version.
    newestApplied: late[0].outOfOrder!.newestApplied,
    files: late.slice(0, OUT_OF_ORDER_FILES_SHOWN).map((file) => file.fileName),
    count: late.length,
  };
}

/**
 * One line: each late file, on which environments, older than which applied version, e.g.
 * `20240101000000_x.sql on staging and production, older than applied 20240301000000`.
 */
export function describeOutOfOrder(findings: OutOfOrderFinding[]): string {
  const byFile = new Map<string, { environment: string; newestApplied: string }[]>();
  for (const finding of findings) {
    for (const fileName of finding.files) byFile.set(fileName, [...(byFile.get(fileName) ?? []), finding]);
  }
  // Files that are late in the same places read as one group.
  const groups = new Map<string, string[]>();
  for (const [fileName, places] of [...byFile].sort(([a], [b]) => a.localeCompare(b))) {
    const where = describePlaces(places);
    groups.set(where, [...(groups.get(where) ?? []), fileName]);
  }
  const parts = [...groups].map(([where, files]) => `${files.join(', ')} on ${where}`);
  const hidden = findings.reduce((sum, finding) => sum + finding.count - finding.files.length, 0);
  return `${parts.join('; ')}${hidden > 0 ? `; and ${hidden} more` : ''}`;
}

/** Why an environment does not start under `migrations.outOfOrder: refuse`, and what a person can do. */
export function describeRefusedOutOfOrder(findings: OutOfOrderFinding[], fix: 'pipeline' | 'start'): string {
  const count = findings.reduce((sum, finding) => Math.max(sum, finding.count), 0);
  const it = count === 1 ? 'it' : 'them';
  const advice =
    fix === 'pipeline'
      ? `give ${it} a new version (rename the file) and retry, or mark-complete to record ${it} as done without running ${it}`
      : `give ${it} a new version (rename the file), or set migrations.outOfOrder: warn to apply ${it} anyway`;
  return `out of order: ${describeOutOfOrder(findings)} (migrations.outOfOrder: refuse); ${advice}`;
}

function describePlaces(places: { environment: string; newestApplied: string }[]): string {
  const newest = new Set(places.map((place) => place.newestApplied));
  if (newest.size === 1) return `${joinAnd(places.map((place) => place.environment))}, older than applied ${places[0].newestApplied}`;
  return joinAnd(places.map((place) => `${place.environment} (older than applied ${place.newestApplied})`));
}

function joinAnd(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}
