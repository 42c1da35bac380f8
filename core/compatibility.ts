// The compatibility gate's results: which of the running application's queries no longer plan, and why.
export interface AppQuery {
  /** Where it came from: file:line, or pg_stat_statements. */
  source: string;
  sql: string;
}

export interface IncompatibleQuery extends AppQuery {
  sqlstate?: string;
  error: string;
}

export interface CompatibilityResult {
  environment: string;
  checked: number;
  failures: IncompatibleQuery[];
}

/** One line per failing query for a blocked status: where it is, the query, and PostgreSQL's error. */
export function describeIncompatible(result: CompatibilityResult): string {
  return result.failures
    .map((failure) => `${failure.source}: ${failure.sql.replace(/\s+/g, ' ').slice(0, 200)} → ERROR ${failure.sqlstate ?? ''} ${failure.error}`)
    .join(' | ');
}
