// Drift between two environments: which migrations each has run, and how their schemas differ.

/** A database's migrations and catalog, each catalog entry keyed by what it is and described by its definition. */
export interface SchemaSnapshot {
  versions: string[];
  /** e.g. "column public.plan_limits.web_hook_calls" → "integer NOT NULL DEFAULT 0" */
  catalog: Record<string, string>;
}

export interface VersionDrift {
  onlyInFirst: string[];
  onlyInSecond: string[];
}

export interface CatalogDifference {
  object: string;
  first?: string;
  second?: string;
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
    catalog: objects
      .filter((object) => a.catalog[object] !== b.catalog[object])
      .map((object) => ({ object, first: a.catalog[object], second: b.catalog[object] })),
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
  for (const difference of report.catalog) {
    if (difference.second === undefined) lines.push(`${difference.object} only on ${first}: ${difference.first}`);
    else if (difference.first === undefined) lines.push(`${difference.object} only on ${second}: ${difference.second}`);
    else lines.push(`${difference.object} differs: ${first} has ${difference.first}; ${second} has ${difference.second}`);
  }
  return lines;
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
