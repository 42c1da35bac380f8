// dbchange.yaml comes in untrusted and leaves parsed: every problem is reported at once, by key and line.
import { z } from 'zod';
import { CRITICALITIES, DEFAULT_CR_APPROVALS, type Criticality } from './criticality';
import { parseDuration } from './duration';
import { DEFAULT_MAX_ATTEMPTS, DEFAULT_STATEMENT_TIMEOUT_RETRIES } from './step-retries';
import { DEFAULT_OUT_OF_ORDER_POLICY, OUT_OF_ORDER_POLICIES, type OutOfOrderPolicy } from './out-of-order';
import { describeSchemaIssues, durationText, readYamlSource } from './yaml-source';
import { fleetSchema, toFleetConfig, type FleetConfig } from './fleet';
import { DATABASE_NAME_PATTERN, DATABASE_NAME_RULE, MAIN_DATABASE, parseTargetAddress, targetAddress } from './targets';
import { approvalsSchema, approverProblems, approverSchema, gatewaysSchema, splitApprovers, type GatewayConfig, type SignaturePolicy } from './approvers';

export const DEFAULT_CONFIG_FILE = 'dbchange.yaml';

const VARIABLE_PATTERN = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

const duration = durationText('200ms, 30s, 15m, 24h');
const environmentName = z
  .string()
  .regex(/^[a-z][a-z0-9-]*$/, 'use lowercase letters, digits and dashes, starting with a letter (e.g. staging)');
const userName = z.string().min(1);
const databaseName = z
  .string()
  .regex(DATABASE_NAME_PATTERN, `use ${DATABASE_NAME_RULE}`);

const environmentSchema = z.strictObject({
  name: environmentName,
  /** One database (named main); `databases` lists several. Exactly one of the two (crossFieldProblems). */
  databaseUrl: z.string().min(1, 'set databaseUrl, usually as ${SOME_DATABASE_URL}').optional(),
  databases: z
    .record(databaseName, z.string().min(1, 'set the URL, usually as ${SOME_DATABASE_URL}'))
    .refine((databases) => Object.keys(databases).length > 0, 'list at least one database, e.g. main: ${MAIN_DATABASE_URL}')
    .optional(),
  /** A fleet: targets listed by a source, rolled out in waves. */
  fleet: fleetSchema.optional(),
  qa: z.strictObject({ command: z.string().min(1), timeout: duration.default('30m') }).optional(),
  approval: z
    .strictObject({ roles: z.array(z.string().min(1)).min(1), timeout: duration.default('24h') })
    .optional(),
});

const configSchema = z.strictObject({
  migrations: z.strictObject({
    regular: z.string().min(1).optional(),
    postDeploy: z.string().min(1),
    /** A folder of backfill files (<version>_<name>.yaml): data changes run in self-pacing batches. */
    backfills: z.string().min(1).optional(),
    outOfOrder: z.enum(OUT_OF_ORDER_POLICIES).default(DEFAULT_OUT_OF_ORDER_POLICY),
  }),
  environments: z.array(environmentSchema).min(1, 'list at least one environment'),
  approvers: z.record(userName, approverSchema).default({}),
  approvals: approvalsSchema,
  gateways: gatewaysSchema,
  notifications: z.strictObject({ webhookUrl: z.string().optional() }).default({}),
  lockRetry: z
    .strictObject({
      lockTimeout: duration.refine((text) => parseDuration(text)! > 0, 'must be above 0 (0 would mean wait forever)').default('200ms'),
      statementTimeout: duration.default('15m'),
      maxWait: duration.default('30m'),
      statementTimeoutRetries: z.number().int().min(0).max(10).default(DEFAULT_STATEMENT_TIMEOUT_RETRIES),
      maxAttempts: z.number().int().min(1).max(100).default(DEFAULT_MAX_ATTEMPTS),
    })
    .default({ lockTimeout: '200ms', statementTimeout: '15m', maxWait: '30m', statementTimeoutRetries: DEFAULT_STATEMENT_TIMEOUT_RETRIES, maxAttempts: DEFAULT_MAX_ATTEMPTS }),
  changeLocks: z
    .array(z.strictObject({ start: z.iso.datetime({ offset: true }), end: z.iso.datetime({ offset: true }), reason: z.string().min(1) }))
    .default([]),
  productionChecks: z.strictObject({ recheckInterval: duration.default('1m') }).default({ recheckInterval: '1m' }),
  changeRequests: z
    .strictObject({
      /** Roles whose approval a CR of each criticality needs: one distinct person per role, never the requester. */
      approvals: z.strictObject(Object.fromEntries(CRITICALITIES.map((level) => [level, z.array(z.string().min(1)).optional()])) as Record<Criticality, z.ZodOptional<z.ZodArray<z.ZodString>>>).default({}),
      rollbackWindow: duration.default('24h'),
      approvalTimeout: duration.default('24h'),
    })
    .default({ approvals: {}, rollbackWindow: '24h', approvalTimeout: '24h' }),
  gates: z
    .strictObject({
      precheckTimeout: duration.default('30s'),
      compatibility: z
        .strictObject({ queries: z.string().min(1).optional(), pgStatStatements: z.boolean().default(false) })
        .default({ pgStatStatements: false }),
      drift: z.enum(['refuse', 'warn']).default('refuse'),
    })
    .default({ precheckTimeout: '30s', compatibility: { pgStatStatements: false }, drift: 'refuse' }),
});

type RawConfig = z.infer<typeof configSchema>;

export interface EnvironmentConfig {
  name: string;
  /** In dbchange.yaml's order; `databaseUrl` makes one named main. Empty for a fleet, whose targets a source lists. */
  databases: DatabaseTarget[];
  fleet?: FleetConfig;
  qa?: { command: string; timeoutMs: number };
  approval?: { roles: string[]; timeoutMs: number };
}

/** One database of an environment, as activities resolve it. */
export interface DatabaseTarget {
  /** What workflows call it: `staging`, or `staging/ci` when the environment has several databases. */
  address: string;
  environment: string;
  database: string;
  /** Resolved from `${VAR}`; undefined when a variable it names is not set here (checked where it is used). */
  url: string | undefined;
  /** The variables the URL needs but this process lacks, for the error message. */
  missingVariables: string[];
  /** Where the URL is set in dbchange.yaml, to name it in errors: `databaseUrl` or `databases.ci`. */
  key: string;
  /** A fleet target that is a schema in a database: its connections use it as their search_path. */
  schema?: string;
}

export interface ChangeLockWindow {
  start: string;
  end: string;
  reason: string;
}

export interface DbChangeConfig {
  /** Absolute path of the file this came from. */
  path: string;
  migrations: {
    regular?: string;
    postDeploy: string;
    backfills?: string;
    /** A pending version older than the newest applied post-deploy version: allow, warn (say so), or refuse (block). */
    outOfOrder: OutOfOrderPolicy;
  };
  environments: EnvironmentConfig[];
  /** user → roles they hold. */
  approvers: Record<string, string[]>;
  /** user → their OpenSSH public key lines (empty when they have none); a signed decision verifies against these. */
  approverKeys: Record<string, string[]>;
  /** `required`: an unsigned decision is refused. */
  signatures: SignaturePolicy;
  /** Trusted signers that assert named approvers (a chat-ops bot that authenticates people itself). */
  gateways: Record<string, GatewayConfig>;
  webhookUrl?: string;
  /**
   * maxWaitMs bounds how long one try of a step waits for locks (lock_timeout, then waiting for the blocker);
   * maxAttempts bounds the tries after transient errors; statementTimeoutRetries the retries after statement_timeout.
   */
  lockRetry: { lockTimeoutMs: number; statementTimeoutMs: number; maxWaitMs: number; statementTimeoutRetries: number; maxAttempts: number };
  changeLocks: ChangeLockWindow[];
  recheckIntervalMs: number;
  changeRequests: { approvals: Record<Criticality, string[]>; rollbackWindowMs: number; approvalTimeoutMs: number };
  gates: GatesConfig;
}

export interface GatesConfig {
  /** statement_timeout of each read-only precheck query. */
  precheckTimeoutMs: number;
  /** The running application's queries: a SQL file (absolute path), and/or pg_stat_statements of each environment. */
  compatibility: { queries?: string; pgStatStatements: boolean };
  /** Promoting to an environment whose regular migrations differ from the previous one's: refuse (block) or warn. */
  drift: 'refuse' | 'warn';
}

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`invalid config ${file}:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Parses the text of dbchange.yaml. `${VAR}` is expanded from `env`; a variable missing from `env` is an
 * error everywhere except in secrets (databaseUrl, webhookUrl), which only the worker needs.
 */
export function parseConfig(text: string, file: string, env: Record<string, string | undefined>, baseDir: string): DbChangeConfig {
  const source = readYamlSource(text);
  if (source.syntaxErrors.length > 0) throw new ConfigError(file, source.syntaxErrors);
  const problems: string[] = [];

  const missingBySecret = new Map<string, string[]>();
  const expanded = expandVariables(source.data, env, [], (path, name) => {
    const key = path.join('.');
    if (isSecretPath(path)) {
      missingBySecret.set(key, [...(missingBySecret.get(key) ?? []), name]);
      return 'keep';
    }
    problems.push(`${source.lineOf(path)}: ${key}: environment variable ${name} is not set`);
    return 'drop';
  });

  const parsed = configSchema.safeParse(expanded ?? {});
  if (!parsed.success) problems.push(...describeSchemaIssues(parsed.error.issues, source));
  problems.push(...crossFieldProblems(expanded, source.lineOf), ...approverProblems(expanded, source.lineOf));
  if (problems.length > 0 || !parsed.success) throw new ConfigError(file, problems);
  return toConfig(parsed.data, file, baseDir, missingBySecret);
}

function isSecretPath(path: (string | number)[]): boolean {
  const last = path[path.length - 1];
  return last === 'databaseUrl' || last === 'webhookUrl' || last === 'registryUrl' || (path[0] === 'environments' && path[2] === 'databases' && path.length === 4);
}

function expandVariables(
  value: unknown,
  env: Record<string, string | undefined>,
  path: (string | number)[],
  onMissing: (path: (string | number)[], name: string) => 'keep' | 'drop',
): unknown {
  if (typeof value === 'string') {
    // A secret whose variable is missing keeps its `${VAR}` text: only the worker needs it, and it says which to set.
    return value.replace(VARIABLE_PATTERN, (whole, name: string) => {
      const resolved = env[name];
      if (resolved !== undefined && resolved !== '') return resolved;
      return onMissing(path, name) === 'keep' ? whole : '';
    });
  }
  if (Array.isArray(value)) return value.map((item, index) => expandVariables(item, env, [...path, index], onMissing));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, expandVariables(item, env, [...path, key], onMissing)]),
    );
  }
  return value;
}

/** Checks across keys; runs on the raw document too, so they are reported with the schema's problems. */
function crossFieldProblems(raw: unknown, lineOf: (path: PropertyKey[]) => string): string[] {
  const config = (raw ?? {}) as { environments?: unknown; changeLocks?: unknown };
  const environments = Array.isArray(config.environments) ? (config.environments as { name?: unknown; databaseUrl?: unknown; databases?: unknown; fleet?: unknown }[]) : [];
  const changeLocks = Array.isArray(config.changeLocks) ? (config.changeLocks as { start?: unknown; end?: unknown }[]) : [];
  const problems: string[] = [];
  const seen = new Set<unknown>();
  environments.forEach((environment, index) => {
    if (typeof environment?.name !== 'string') return;
    if (seen.has(environment.name)) {
      problems.push(`${lineOf(['environments', index, 'name'])}: environments.${index}.name: duplicate environment "${environment.name}"`);
    }
    seen.add(environment.name);
    const ways = [environment.databaseUrl !== undefined, environment.databases !== undefined, environment.fleet !== undefined].filter(Boolean).length;
    if (ways !== 1) {
      problems.push(
        `${lineOf(['environments', index])}: environments.${index}: ${ways === 0 ? 'no database' : 'more than one of databaseUrl, databases and fleet'}; ` +
          'set databaseUrl (one database), databases (several, e.g. main and ci) or fleet (targets listed by a source)',
      );
    }
  });
  changeLocks.forEach((window, index) => {
    if (Date.parse(String(window?.end)) <= Date.parse(String(window?.start))) {
      problems.push(`${lineOf(['changeLocks', index, 'end'])}: changeLocks.${index}.end: must be after start`);
    }
  });
  return problems;
}

function toConfig(raw: RawConfig, file: string, baseDir: string, missingBySecret: Map<string, string[]>): DbChangeConfig {
  const resolvePath = (relative: string) => (relative.startsWith('/') ? relative : `${baseDir}/${relative}`);
  const approvers = splitApprovers(raw.approvers);
  return {
    path: file,
    migrations: {
      regular: raw.migrations.regular ? resolvePath(raw.migrations.regular) : undefined,
      postDeploy: resolvePath(raw.migrations.postDeploy),
      ...(raw.migrations.backfills ? { backfills: resolvePath(raw.migrations.backfills) } : {}),
      outOfOrder: raw.migrations.outOfOrder,
    },
    environments: raw.environments.map((environment, index) => {
      return {
        name: environment.name,
        databases: environment.fleet ? [] : databasesOf(environment, `environments.${index}`, missingBySecret),
        ...(environment.fleet ? { fleet: toFleetConfig(environment.fleet, baseDir) } : {}),
        qa: environment.qa && { command: environment.qa.command, timeoutMs: parseDuration(environment.qa.timeout)! },
        approval: environment.approval && {
          roles: environment.approval.roles,
          timeoutMs: parseDuration(environment.approval.timeout)!,
        },
      };
    }),
    approvers: approvers.roles,
    approverKeys: approvers.keys,
    signatures: raw.approvals.signatures,
    gateways: raw.gateways,
    webhookUrl: missingBySecret.has('notifications.webhookUrl') ? undefined : raw.notifications.webhookUrl || undefined,
    lockRetry: {
      lockTimeoutMs: parseDuration(raw.lockRetry.lockTimeout)!,
      statementTimeoutMs: parseDuration(raw.lockRetry.statementTimeout)!,
      maxWaitMs: parseDuration(raw.lockRetry.maxWait)!,
      statementTimeoutRetries: raw.lockRetry.statementTimeoutRetries,
      maxAttempts: raw.lockRetry.maxAttempts,
    },
    changeLocks: raw.changeLocks,
    recheckIntervalMs: parseDuration(raw.productionChecks.recheckInterval)!,
    changeRequests: {
      approvals: { ...DEFAULT_CR_APPROVALS, ...raw.changeRequests.approvals } as Record<Criticality, string[]>,
      rollbackWindowMs: parseDuration(raw.changeRequests.rollbackWindow)!,
      approvalTimeoutMs: parseDuration(raw.changeRequests.approvalTimeout)!,
    },
    gates: {
      precheckTimeoutMs: parseDuration(raw.gates.precheckTimeout)!,
      compatibility: {
        queries: raw.gates.compatibility.queries ? resolvePath(raw.gates.compatibility.queries) : undefined,
        pgStatStatements: raw.gates.compatibility.pgStatStatements,
      },
      drift: raw.gates.drift,
    },
  };
}

/** An environment's databases in their order: `databaseUrl` is the one named main. */
function databasesOf(environment: RawConfig['environments'][number], path: string, missingBySecret: Map<string, string[]>): DatabaseTarget[] {
  const listed = environment.databases ? Object.entries(environment.databases).map(([name, url]) => ({ name, url, key: `databases.${name}` })) : [{ name: MAIN_DATABASE, url: environment.databaseUrl ?? '', key: 'databaseUrl' }];
  return listed.map(({ name, url, key }) => {
    const missingVariables = missingBySecret.get(`${path}.${key}`) ?? [];
    return {
      address: targetAddress(environment.name, name, listed.length),
      environment: environment.name,
      database: name,
      url: missingVariables.length > 0 ? undefined : url,
      missingVariables,
      key,
    };
  });
}

/** The environments a pipeline walks: the ones asked for, in config order, or all of them. */
export function selectEnvironments(config: DbChangeConfig, requested: string[] | undefined): EnvironmentConfig[] {
  if (!requested || requested.length === 0) return config.environments;
  const known = new Set(config.environments.map((environment) => environment.name));
  const unknown = requested.filter((name) => !known.has(name));
  if (unknown.length > 0) {
    throw new ConfigError(config.path, [
      `unknown environment ${unknown.map((name) => `"${name}"`).join(', ')}; configured: ${[...known].join(', ')}`,
    ]);
  }
  return config.environments.filter((environment) => requested.includes(environment.name));
}

/** The connection string of a database, or an error that says which variable to set. */
export function requireDatabaseUrl(target: DatabaseTarget): string {
  if (target.url) return target.url;
  const names = target.missingVariables.map((name) => `\${${name}}`).join(', ');
  throw new ConfigError('dbchange.yaml', [
    `environments.${target.environment}.${target.key}: ${names} is not set in this process's environment; export it where the worker runs`,
  ]);
}

/**
 * The database a target address names: `staging` for an environment's only database, `staging/ci` for one of
 * several. An unknown or ambiguous address is a ConfigError that lists the addresses there are.
 */
export function resolveTarget(config: DbChangeConfig, address: string): DatabaseTarget {
  const { environment: name } = parseTargetAddress(address);
  const [environment] = selectEnvironments(config, [name]);
  const found = environment.databases.find((target) => target.address === address);
  if (found) return found;
  throw new ConfigError(config.path, [
    `environment ${name} has no database "${address}"; its databases are ${environment.databases.map((target) => target.address).join(', ')}`,
  ]);
}

/**
 * The same database on another environment, which drift and promotion compare it with: the only one when both
 * environments have one database, else the one with the same name. Undefined when it has none.
 */
export function counterpartIn(other: EnvironmentConfig, target: DatabaseTarget, targetCount: number): DatabaseTarget | undefined {
  if (other.databases.length === 1 && targetCount === 1) return other.databases[0];
  return other.databases.find((item) => item.database === target.database);
}

/** Each database of `environment` with its counterpart on `previous`, for drift. */
export function databasePairs(previous: EnvironmentConfig, environment: EnvironmentConfig): [DatabaseTarget, DatabaseTarget][] {
  return environment.databases.flatMap((target): [DatabaseTarget, DatabaseTarget][] => {
    const counterpart = counterpartIn(previous, target, environment.databases.length);
    return counterpart ? [[counterpart, target]] : [];
  });
}

/** Every database of the project, environment by environment, in dbchange.yaml's order. */
export function allTargets(config: DbChangeConfig): DatabaseTarget[] {
  return config.environments.flatMap((environment) => environment.databases);
}
