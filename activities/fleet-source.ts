// Reads a fleet's targets from its source (a YAML file or a registry query), and caches them briefly so that many
// activities resolving one target each do not each re-read the registry.
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import type { DatabaseTarget } from '../core/config';
import type { FleetConfig } from '../core/fleet';
import { FleetSourceError, parseRegistryRows, parseTargetFile, type FleetTarget } from '../core/fleet-source';

export const REGISTRY_CONNECT_TIMEOUT_MS = 5_000;
export const REGISTRY_STATEMENT_TIMEOUT_MS = 30_000;
export const FLEET_TARGETS_TTL_MS = 30_000;
const REGISTRY_LABEL = 'fleet.source.query';
const UNSET_VARIABLE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** The fleet's targets in source order: file order, or the registry query's ORDER BY. */
export async function readFleetTargets(fleet: FleetConfig, env: Record<string, string | undefined> = process.env): Promise<FleetTarget[]> {
  if (fleet.source.kind === 'file') return readTargetFile(fleet.source.file, env);
  return queryRegistry(fleet.source.query, fleet.source.registryUrl);
}

async function readTargetFile(file: string, env: Record<string, string | undefined>): Promise<FleetTarget[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`;
    throw new FleetSourceError(file, [`fleet.source.file: ${file} ${reason}; paths are relative to the folder of dbchange.yaml`]);
  }
  return parseTargetFile(text, file, env);
}

async function queryRegistry(query: string, registryUrl: string): Promise<FleetTarget[]> {
  // config.ts keeps an unset ${VAR} in a secret as it was written, so the worker can say which variable to export.
  const unset = [...registryUrl.matchAll(UNSET_VARIABLE)].map((match) => match[1]);
  if (unset.length > 0) {
    throw new FleetSourceError('fleet.source.registryUrl', [`fleet.source.registryUrl: \${${unset.join('}, ${')}} is not set in this process's environment; export it where the worker runs`]);
  }
  const client = new pg.Client({
    connectionString: registryUrl,
    connectionTimeoutMillis: REGISTRY_CONNECT_TIMEOUT_MS,
    statement_timeout: REGISTRY_STATEMENT_TIMEOUT_MS,
    application_name: 'dbchange',
    // Listing targets must never change the registry, whatever the query says.
    options: '-c default_transaction_read_only=on',
  });
  // A connection lost mid-query also emits 'error'; the pending query already rejects with it.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    throw new FleetSourceError(REGISTRY_LABEL, [`could not connect to fleet.source.registryUrl: ${describeError(error)}`]);
  }
  try {
    let result: pg.QueryResult | pg.QueryResult[];
    try {
      result = await client.query(query);
    } catch (error) {
      throw new FleetSourceError(REGISTRY_LABEL, [`the registry query failed: ${describeError(error)}`]);
    }
    if (Array.isArray(result)) throw new FleetSourceError(REGISTRY_LABEL, ['the registry query must be one SELECT statement']);
    return parseRegistryRows(result.rows, result.fields.map((field) => field.name), REGISTRY_LABEL);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * SQLSTATE and the first line of the server's message; a network error only by its code, since its message may
 * carry the host. Never the URL.
 */
function describeError(error: unknown): string {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  const firstLine = typeof message === 'string' ? message.split('\n')[0] : '';
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return `ERROR ${code}: ${firstLine}`;
  if (typeof code === 'string') return code;
  return /timeout/i.test(firstLine) ? 'connection timeout' : 'connection failed';
}

/** A fleet target as a database the apply and read code can use: its address is `environment/name`. */
export function fleetDatabaseTarget(environment: string, target: FleetTarget): DatabaseTarget {
  return { address: `${environment}/${target.name}`, environment, database: target.database, url: target.url, missingVariables: [], key: `fleet target ${target.name}`, ...(target.schema ? { schema: target.schema } : {}) };
}

/** A target a rollout named that its environment's source no longer lists. */
export class FleetTargetNotListedError extends Error {
  constructor(
    readonly environment: string,
    readonly target: string,
  ) {
    super(
      `target ${target} is no longer listed by fleet.source of environment ${environment}; ` +
        `list it again and retry, or decide for it with dbchange resolve <workflow-id> --target ${target}`,
    );
    this.name = 'FleetTargetNotListed';
  }
}

interface CacheEntry {
  loadedAt: number;
  targets: Promise<FleetTarget[]>;
}

/** Targets per environment, reused for `ttlMs`; concurrent callers share one read, and a failed read is not kept. */
export class FleetTargetCache {
  private readonly entries = new Map<string, CacheEntry>();

  constructor(
    private readonly load: (environment: string) => Promise<FleetTarget[]>,
    private readonly ttlMs = FLEET_TARGETS_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  targets(environment: string): Promise<FleetTarget[]> {
    return this.entry(environment).entry.targets;
  }

  /** The target named `targetName`; a miss on a cached list re-reads the source once, since the list may predate it. */
  async lookup(environment: string, targetName: string): Promise<FleetTarget> {
    const { entry, created } = this.entry(environment);
    let found = (await entry.targets).find((target) => target.name === targetName);
    if (!found && !created) {
      // Another caller may have started the re-read already: share it.
      const current = this.entries.get(environment);
      const fresh = current && current !== entry ? current : this.entry(environment, true).entry;
      found = (await fresh.targets).find((target) => target.name === targetName);
    }
    if (!found) throw new FleetTargetNotListedError(environment, targetName);
    return found;
  }

  forget(environment?: string): void {
    if (environment === undefined) this.entries.clear();
    else this.entries.delete(environment);
  }

  private entry(environment: string, reload = false): { entry: CacheEntry; created: boolean } {
    const existing = this.entries.get(environment);
    if (existing && !reload && this.now() - existing.loadedAt < this.ttlMs) return { entry: existing, created: false };
    const entry: CacheEntry = { loadedAt: this.now(), targets: this.load(environment) };
    this.entries.set(environment, entry);
    void entry.targets.catch(() => {
      if (this.entries.get(environment) === entry) this.entries.delete(environment);
    });
    return { entry, created: true };
  }
}
