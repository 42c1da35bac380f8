// Drift between two environments: which migrations each has run, and how their schemas differ.
import { foldPartitionDifferences } from './partition-drift';

/** A database's migrations and catalog, each catalog entry keyed by what it is and described by its definition. */
export interface SchemaSnapshot {
  versions: string[];
  /** e.g. "column public.plan_limits.web_hook_calls" → "integer NOT NULL DEFAULT 0" */
  catalog: Record<string, string>;
  /** A partition's copy of its parent's object → that object, e.g. "index public.events_0_project_id_idx" → "index public.index_events_on_project_id". */
  parents: Record<string, string>;
}

export interface VersionDrift {
  onlyInFirst: string[];
  onlyInSecond: string[];
}

export interface CatalogDifference {
  object: string;
  first?: string;
  second?: string;
  /** The partitions' copies of this object that differ exactly as it does, reported with it. */
  partitions?: string[];
}

export interface DriftReport {
  first: string;
  second: string;
  regular: VersionDrift;
  postDeploy: VersionDrift;
  catalog: CatalogDifference[];
}

/** Versions in the post-deploy folder are post-deploy migrations; every other recorded version is a regular one. */
export function compareSnapshots(first: string, a: SchemaSnapshot, second: string, b: SchemaSnapshot, postDeployVersions: ReadonlySet<string>): DriftReport {
  const split = (versions: string[]) => ({
    regular: new Set(versions.filter((version) => !postDeployVersions.has(version))),
    postDeploy: new Set(versions.filter((version) => postDeployVersions.has(version))),
  });
  const left = split(a.versions);
  const right = split(b.versions);
  const objects = [...new Set([...Object.keys(a.catalog), ...Object.keys(b.catalog)])].sort();
  return {
    first,
    second,
    regular: versionDrift(left.regular, right.regular),
    postDeploy: versionDrift(left.postDeploy, right.postDeploy),
    catalog: foldPartitionDifferences(
      objects.filter((object) => a.catalog[object] !== b.catalog[object]).map((object) => ({ object, first: a.catalog[object], second: b.catalog[object] })),
      { first: a.parents, second: b.parents },
    ),
  };
}

function versionDrift(a: Set<string>, b: Set<string>): VersionDrift {
  return { onlyInFirst: [...a].filter((version) => !b.has(version)).sort(), onlyInSecond: [...b].filter((version) => !a.has(version)).sort() };
}

export function hasDrift(report: DriftReport): boolean {
  return describeDrift(report).length > 0;
}

/** One line per difference, in words a person can act on. */
export function describeDrift(report: DriftReport): string[] {
  const { first, second } = report;
  const lines = [
    ...describeVersions('regular', report.regular, first, second),
    ...describeVersions('post-deploy', report.postDeploy, first, second),
  ];
  for (const difference of report.catalog) lines.push(describeDifference(difference, first, second) + describePartitions(difference));
  return lines;
}

function describeDifference(difference: CatalogDifference, first: string, second: string): string {
  if (difference.second === undefined) return `${difference.object} only on ${first}: ${difference.first}`;
  if (difference.first === undefined) return `${difference.object} only on ${second}: ${difference.second}`;
  return `${difference.object} differs: ${first} has ${difference.first}; ${second} has ${difference.second}`;
}

function describePartitions(difference: CatalogDifference): string {
  const count = difference.partitions?.length ?? 0;
  return count === 0 ? '' : `; and the same on ${count} partition${count === 1 ? '' : 's'}`;
}

/** Only the regular-migration lines: what the pipeline checks before promoting. */
export function describeRegularDrift(report: DriftReport): string[] {
  return describeVersions('regular', report.regular, report.first, report.second);
}

function describeVersions(kind: string, drift: VersionDrift, first: string, second: string): string[] {
  return [
    ...(drift.onlyInFirst.length > 0 ? [`${kind} migration${drift.onlyInFirst.length === 1 ? '' : 's'} ${drift.onlyInFirst.join(', ')} ran on ${first} but not on ${second}`] : []),
    ...(drift.onlyInSecond.length > 0 ? [`${kind} migration${drift.onlyInSecond.length === 1 ? '' : 's'} ${drift.onlyInSecond.join(', ')} ran on ${second} but not on ${first}`] : []),
  ];
}
