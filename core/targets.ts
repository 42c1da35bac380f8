// Where a change runs. An environment is a set of targets: its databases (one, or several such as GitLab's main and
// ci), or later the members of a fleet. Workflows name a target by its address; only activities resolve its URL.

/** `databaseUrl: X` is shorthand for `databases: { main: X }`. */
export const MAIN_DATABASE = 'main';
/** A database's name, as dbchange.yaml's `databases:`, `-- dbchange:databases` and a CR step's `database:` write it. */
export const DATABASE_NAME_PATTERN = /^[a-z][a-z0-9_]*$/;
export const DATABASE_NAME_RULE = 'lowercase letters, digits and underscores, starting with a letter (e.g. main, ci)';

const ADDRESS_SEPARATOR = '/';

/**
 * The address of one target: the environment's name when it has only that database (so a single-database project
 * reads as before: `staging`), `environment/database` when it has several (`staging/ci`).
 */
export function targetAddress(environment: string, database: string, databaseCount: number): string {
  return databaseCount === 1 ? environment : `${environment}${ADDRESS_SEPARATOR}${database}`;
}

/** `staging/ci` → { environment: 'staging', database: 'ci' }; `staging` → { environment: 'staging' }. */
export function parseTargetAddress(address: string): { environment: string; database?: string } {
  const at = address.indexOf(ADDRESS_SEPARATOR);
  return at < 0 ? { environment: address } : { environment: address.slice(0, at), database: address.slice(at + 1) };
}

/** The environment part of an address, for what is per environment (approvals, production checks, QA). */
export function environmentOf(address: string): string {
  return parseTargetAddress(address).environment;
}

/**
 * Whether a migration runs on a database: its `-- dbchange:databases` header lists where it runs; without one it
 * runs on every database (DDL keeps their schemas identical). Elsewhere it is recorded as done without running.
 * `database` is undefined for an environment with one database: that one holds every schema, so everything runs
 * there (as GitLab's ci migrations run on main where ci shares the main database).
 */
export function runsOn(databases: readonly string[] | undefined, database: string | undefined): boolean {
  return !databases || database === undefined || databases.includes(database);
}
