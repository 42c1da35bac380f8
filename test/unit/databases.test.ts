// Several databases per environment: dbchange.yaml's `databases:`, target addresses, migration headers that name
// their databases, change-request steps that name theirs, and promotion that compares a database with the same one.
import { describe, expect, it } from 'vitest';
import { parseChangeRequest } from '../../core/change-request';
import { changeTargetProblems, checkChangeTargets, stepDatabase } from '../../core/change-targets';
import { allTargets, ConfigError, counterpartIn, databasePairs, parseConfig, requireDatabaseUrl, resolveTarget } from '../../core/config';
import { MigrationFileError, parseMigrationSource } from '../../core/migration-files';
import { addOutcome, emptyCounts, emptyResult } from '../../core/pipeline-record';
import { assessPipelineStart, type LedgerState } from '../../core/promotion';
import { environmentOf, MAIN_DATABASE, parseTargetAddress, runsOn, targetAddress } from '../../core/targets';

const FILE = '/project/dbchange.yaml';
const BASE = '/project';

const TWO_DATABASES = `migrations: { postDeploy: db/post_migrate }
environments:
  - name: staging
    databases:
      main: \${STAGING_MAIN_URL}
      ci: \${STAGING_CI_URL}
  - name: production
    databases:
      main: postgres://prod-main/app
      ci: postgres://prod-ci/app
  - name: solo
    databaseUrl: postgres://solo/app
`;

const STAGING_MAIN = 'postgres://staging-main/app';
const STAGING_CI = 'postgres://staging-ci/app';

function problemsOf(text: string, env: Record<string, string | undefined> = {}): string[] {
  try {
    parseConfig(text, FILE, env, BASE);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

function caught<T extends Error>(type: new (...args: never[]) => T, run: () => unknown): T {
  try {
    run();
  } catch (error) {
    if (error instanceof type) return error;
    throw error;
  }
  throw new Error(`expected a ${type.name}`);
}

describe('databases: in dbchange.yaml', () => {
  it('parses main and ci in their order, with addresses env/db, URLs and the key that sets each', () => {
    const config = parseConfig(TWO_DATABASES, FILE, { STAGING_MAIN_URL: STAGING_MAIN, STAGING_CI_URL: STAGING_CI }, BASE);
    expect(config.environments[0].databases).toEqual([
      { address: 'staging/main', environment: 'staging', database: 'main', url: STAGING_MAIN, missingVariables: [], key: 'databases.main' },
      { address: 'staging/ci', environment: 'staging', database: 'ci', url: STAGING_CI, missingVariables: [], key: 'databases.ci' },
    ]);
    expect(config.environments[2].databases).toEqual([
      { address: 'solo', environment: 'solo', database: MAIN_DATABASE, url: 'postgres://solo/app', missingVariables: [], key: 'databaseUrl' },
    ]);
    expect(allTargets(config).map((target) => target.address)).toEqual(['staging/main', 'staging/ci', 'production/main', 'production/ci', 'solo']);
  });

  it('records a missing ${VAR} in databases.ci as missing, and requireDatabaseUrl names environments.staging.databases.ci', () => {
    const config = parseConfig(TWO_DATABASES, FILE, { STAGING_MAIN_URL: STAGING_MAIN }, BASE);
    const [main, ci] = config.environments[0].databases;
    expect(main).toMatchObject({ url: STAGING_MAIN, missingVariables: [] });
    expect(ci).toMatchObject({ url: undefined, missingVariables: ['STAGING_CI_URL'] });
    expect(requireDatabaseUrl(main)).toBe(STAGING_MAIN);
    expect(() => requireDatabaseUrl(ci)).toThrow(
      new ConfigError('dbchange.yaml', [
        "environments.staging.databases.ci: ${STAGING_CI_URL} is not set in this process's environment; export it where the worker runs",
      ]),
    );
  });

  it('refuses a bad database name at its line, by key', () => {
    const text = `migrations: { postDeploy: db }
environments:
  - name: staging
    databases:
      main: postgres://a
      Bad-Name: postgres://b
`;
    const problems = problemsOf(text);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^line 6: environments\.0\.databases\.Bad-Name: /);
  });

  // Source bug: describeSchemaIssues (core/yaml-source.ts) prints zod's "Invalid key in record" for an
  // invalid_key issue and drops the nested issue that carries databaseName's message (core/config.ts).
  // When that is fixed this starts failing: turn it into a plain `it`.
  it('says what a database name may be', () => {
    const problems = problemsOf('migrations: { postDeploy: db }\nenvironments:\n  - name: staging\n    databases:\n      Main: postgres://a\n');
    expect(problems).toEqual([
      'line 5: environments.0.databases.Main: use lowercase letters, digits and underscores, starting with a letter (e.g. main, ci)',
    ]);
  });

  it('refuses an empty databases: with its line', () => {
    expect(problemsOf('migrations: { postDeploy: db }\nenvironments:\n  - name: staging\n    databases: {}\n')).toEqual([
      'line 4: environments.0.databases: list at least one database, e.g. main: ${MAIN_DATABASE_URL}',
    ]);
  });

  it('refuses an environment with both databaseUrl and databases, and one with neither, naming each', () => {
    const text = `migrations: { postDeploy: db }
environments:
  - name: staging
    databaseUrl: postgres://a
    databases: { main: postgres://a, ci: postgres://b }
  - name: production
    qa: { command: npm test }
`;
    expect(problemsOf(text)).toEqual([
      'line 3: environments.0: more than one of databaseUrl, databases and fleet; set databaseUrl (one database), databases (several, e.g. main and ci) or fleet (targets listed by a source)',
      'line 6: environments.1: no database; set databaseUrl (one database), databases (several, e.g. main and ci) or fleet (targets listed by a source)',
    ]);
  });
});

describe('resolveTarget', () => {
  const config = parseConfig(TWO_DATABASES, FILE, { STAGING_MAIN_URL: STAGING_MAIN, STAGING_CI_URL: STAGING_CI }, BASE);

  it('finds the only database of an environment by its name, and one of several by env/db', () => {
    expect(resolveTarget(config, 'solo')).toMatchObject({ address: 'solo', database: 'main', url: 'postgres://solo/app' });
    expect(resolveTarget(config, 'staging/ci')).toMatchObject({ address: 'staging/ci', database: 'ci', url: STAGING_CI, key: 'databases.ci' });
    expect(resolveTarget(config, 'staging/main')).toMatchObject({ address: 'staging/main', url: STAGING_MAIN });
  });

  it('refuses an unknown database and lists the addresses there are', () => {
    expect(() => resolveTarget(config, 'staging/sec')).toThrow(
      new ConfigError(FILE, ['environment staging has no database "staging/sec"; its databases are staging/main, staging/ci']),
    );
  });

  it('refuses an environment name alone when it has several databases', () => {
    expect(caught(ConfigError, () => resolveTarget(config, 'staging')).problems).toEqual([
      'environment staging has no database "staging"; its databases are staging/main, staging/ci',
    ]);
  });

  it('refuses an unknown environment, listing the configured ones', () => {
    expect(caught(ConfigError, () => resolveTarget(config, 'qa/ci')).problems).toEqual(['unknown environment "qa"; configured: staging, production, solo']);
  });
});

describe('target addresses', () => {
  it('is the environment name with one database, env/db with several', () => {
    expect(targetAddress('staging', 'main', 1)).toBe('staging');
    expect(targetAddress('staging', 'ci', 1)).toBe('staging');
    expect(targetAddress('staging', 'ci', 2)).toBe('staging/ci');
  });

  it('parses an address back, and gives its environment', () => {
    expect(parseTargetAddress('staging')).toEqual({ environment: 'staging' });
    expect(parseTargetAddress('staging/ci')).toEqual({ environment: 'staging', database: 'ci' });
    expect(environmentOf('staging')).toBe('staging');
    expect(environmentOf('production/ci')).toBe('production');
    expect(MAIN_DATABASE).toBe('main');
  });

  it('runs a migration everywhere without a header, and only on the databases its header lists', () => {
    expect(runsOn(undefined, 'main')).toBe(true);
    expect(runsOn(undefined, 'ci')).toBe(true);
    expect(runsOn(['ci'], 'ci')).toBe(true);
    expect(runsOn(['ci'], 'main')).toBe(false);
    expect(runsOn(['ci', 'sec'], 'sec')).toBe(true);
    expect(runsOn(['ci', 'sec'], 'main')).toBe(false);
  });

});

describe('databasePairs: what drift and promotion compare a database with', () => {
  const config = (text: string) => parseConfig(text, FILE, {}, BASE);
  const environmentsOf = (text: string) => config(`migrations: { postDeploy: db/post_migrate }\nenvironments:\n${text}`).environments;
  const pairs = (text: string) => {
    const [previous, environment] = environmentsOf(text);
    return databasePairs(previous, environment).map(([left, right]) => `${left.address} ↔ ${right.address}`);
  };

  it('pairs the only database of two environments whatever its name', () => {
    expect(pairs('  - { name: a, databaseUrl: postgres://a }\n  - { name: b, databases: { ci: postgres://b } }')).toEqual(['a ↔ b']);
  });

  it('pairs databases by name when an environment has several, and leaves out one the other lacks', () => {
    expect(pairs('  - { name: a, databases: { main: postgres://a1, ci: postgres://a2 } }\n  - { name: b, databases: { main: postgres://b1, ci: postgres://b2 } }')).toEqual(['a/main ↔ b/main', 'a/ci ↔ b/ci']);
    expect(pairs('  - { name: a, databases: { main: postgres://a1, ci: postgres://a2 } }\n  - { name: b, databases: { ci: postgres://b2 } }')).toEqual(['a/ci ↔ b']);
    expect(pairs('  - { name: a, databases: { ci: postgres://a2 } }\n  - { name: b, databases: { main: postgres://b1, ci: postgres://b2 } }')).toEqual(['a ↔ b/ci']);
    expect(pairs('  - { name: a, databases: { main: postgres://a1, sec: postgres://a3 } }\n  - { name: b, databases: { main: postgres://b1, ci: postgres://b2 } }')).toEqual(['a/main ↔ b/main']);
  });

  it('gives promotion the same counterpart as drift', () => {
    const [a, b] = environmentsOf('  - { name: a, databases: { main: postgres://a1, ci: postgres://a2 } }\n  - { name: b, databases: { ci: postgres://b2 } }');
    expect(counterpartIn(a, b.databases[0], 1)?.address).toBe('a/ci');
    expect(counterpartIn(a, { ...b.databases[0], database: 'sec' }, 1)).toBeUndefined();
    expect(counterpartIn(b, a.databases[1], 2)?.address).toBe('b');
  });
});

describe('-- dbchange:databases in a migration header', () => {
  const MIGRATION = '20240115100000_backfill_ci_runners.sql';
  const withHeader = (header: string) => `-- Copies the runners.\n${header}\n-- migrate:up\nSELECT 1;\n`;

  it('reads the list, with commas and spaces, once per name', () => {
    expect(parseMigrationSource(MIGRATION, withHeader('-- dbchange:databases ci, sec')).databases).toEqual(['ci', 'sec']);
    expect(parseMigrationSource(MIGRATION, withHeader('-- dbchange:databases ci')).databases).toEqual(['ci']);
    expect(parseMigrationSource(MIGRATION, withHeader('-- dbchange:databases ci,sec ci')).databases).toEqual(['ci', 'sec']);
  });

  it('leaves databases unset without the header (the migration runs everywhere)', () => {
    expect(parseMigrationSource(MIGRATION, '-- migrate:up\nSELECT 1;\n').databases).toBeUndefined();
  });

  it('refuses a bad name or an empty list, naming the line', () => {
    expect(caught(MigrationFileError, () => parseMigrationSource(MIGRATION, withHeader('-- dbchange:databases ci, Sec'))).problem).toBe(
      'line 2: -- dbchange:databases: expected database names as dbchange.yaml\'s databases: lists them, e.g. "-- dbchange:databases ci" or "ci,sec"; not a name: Sec',
    );
    expect(caught(MigrationFileError, () => parseMigrationSource(MIGRATION, withHeader('-- dbchange:databases'))).problem).toBe(
      'line 2: -- dbchange:databases: expected database names as dbchange.yaml\'s databases: lists them, e.g. "-- dbchange:databases ci" or "ci,sec"',
    );
  });
});

describe('change-request steps and their databases', () => {
  const config = parseConfig(TWO_DATABASES, FILE, { STAGING_MAIN_URL: STAGING_MAIN, STAGING_CI_URL: STAGING_CI }, BASE);
  const changeRequest = (environments: string, steps: string, rollback = '') =>
    parseChangeRequest(`id: cr-1\ntitle: t\ncriticality: C3\nrequestedBy: ahegyi\nenvironments: [${environments}]\nsteps:\n${steps}${rollback}`, 'cr.yaml');

  it('names a step without database: on an environment with two, by line, list, step id and the databases', () => {
    const cr = changeRequest(
      'staging, production',
      '  - id: drop-fk\n    sql: ALTER TABLE t DROP CONSTRAINT c;\n  - id: fk-gone\n    database: ci\n    check: SELECT 1\n    expect: { rows: 0 }\n',
      'rollback:\n  - id: readd\n    sql: ALTER TABLE t ADD CONSTRAINT c CHECK (true);\n',
    );
    expect(changeTargetProblems(config, cr)).toEqual([
      'line 7: steps.drop-fk: environment staging has several databases; set database: to one of main, ci',
      'line 14: rollback.readd: environment staging has several databases; set database: to one of main, ci',
    ]);
    expect(() => checkChangeTargets(config, 'cr.yaml', cr)).toThrow(/invalid change request cr\.yaml:\n {2}- line 7: steps\.drop-fk: /);
  });

  it('names a database an environment does not have', () => {
    const cr = changeRequest('staging, production', '  - id: backfill\n    database: sec\n    sql: SELECT 1;\n');
    expect(changeTargetProblems(config, cr)).toEqual([
      'line 7: steps.backfill: environment staging has no database "sec"; set database: to one of main, ci',
    ]);
  });

  it('finds the named database of each environment', () => {
    const cr = changeRequest('staging, production', '  - id: backfill\n    database: ci\n    sql: SELECT 1;\n');
    expect(changeTargetProblems(config, cr)).toEqual([]);
    expect(() => checkChangeTargets(config, 'cr.yaml', cr)).not.toThrow();
    expect(stepDatabase(config.environments[1], cr.steps[0])?.address).toBe('production/ci');
  });

  it('needs no database: on an environment with one database', () => {
    const cr = changeRequest('solo', '  - id: backfill\n    sql: SELECT 1;\n');
    expect(changeTargetProblems(config, cr)).toEqual([]);
    expect(stepDatabase(config.environments[2], cr.steps[0])?.address).toBe('solo');
  });

  it('ignores approval steps, which touch no database', () => {
    const cr = changeRequest('staging', '  - id: ok\n    approval: { roles: [eoc] }\n  - id: run\n    database: main\n    sql: SELECT 1;\n');
    expect(cr.steps.map((step) => step.kind)).toEqual(['approval', 'sql']);
    expect(changeTargetProblems(config, cr)).toEqual([]);
  });
});

describe('promotion compares a database with the same one on earlier environments', () => {
  const VERSION = '20240601000003';
  const RAN = 'a'.repeat(64);
  const OTHER = 'c'.repeat(64);
  const files = [{ version: VERSION, name: 'backfill', fileName: `${VERSION}_backfill.sql`, checksum: RAN }];
  const ledger = (entries: [string, string][]): LedgerState => ({ versions: new Set(entries.map(([version]) => version)), checksums: new Map(entries) });
  const ledgers = [
    { environment: 'staging/main', database: 'main', state: ledger([[VERSION, RAN]]) },
    { environment: 'staging/ci', database: 'ci', state: ledger([[VERSION, OTHER]]) },
    { environment: 'production/main', database: 'main', state: ledger([]) },
    { environment: 'production/ci', database: 'ci', state: ledger([]) },
  ];

  it('does not refuse main for what ci ran with other bytes', () => {
    expect(assessPipelineStart(files, ledgers, ['production/main'], 'warn')).toEqual({ refusals: [], warnings: [], unchecked: [] });
  });

  it('refuses ci for what ci ran with other bytes', () => {
    const { refusals } = assessPipelineStart(files, ledgers, ['production/ci'], 'warn');
    expect(refusals).toEqual([expect.stringMatching(/^promotion refused: 20240601000003_backfill\.sql would run on production\/ci as aaaaaaaaaaaa, but staging\/ci ran cccccccccccc/)]);
    expect(refusals[0]).not.toContain('staging/main');
  });
});

describe('skipped outcomes', () => {
  it('counts skipped migrations, also in a status from before skipped existed', () => {
    expect(emptyCounts()).toEqual({ applied: 0, 'already-applied': 0, 'marked-complete': 0, skipped: 0, failed: 0 });
    const result = emptyResult('staging');
    delete (result.counts as Partial<typeof result.counts>).skipped;
    addOutcome(result, { version: '20240601000003', name: 'backfill', outcome: 'skipped', durationMs: 0, attempts: 1 });
    expect(result.counts.skipped).toBe(1);
    expect(result.migrations.map((outcome) => outcome.outcome)).toEqual(['skipped']);
  });
});

describe('a fleet environment in dbchange.yaml', () => {
  const FLEET = `migrations: { postDeploy: db/post_migrate }
environments:
  - name: cells
    fleet:
      source: { query: "SELECT name, url FROM cells", registryUrl: "\${REGISTRY_URL}" }
      waves: [{count: 1}, {percent: 10}, {percent: 100}]
      concurrency: 16
`;

  it('has no databases of its own, keeps an unset registryUrl variable for the worker to name, and plans no secret', () => {
    const config = parseConfig(FLEET, FILE, {}, BASE);
    const [cells] = config.environments;
    expect(cells.databases).toEqual([]);
    expect(cells.fleet).toEqual({
      source: { kind: 'query', query: 'SELECT name, url FROM cells', registryUrl: '${REGISTRY_URL}' },
      waves: [{ count: 1 }, { percent: 10 }, { percent: 100 }],
      concurrency: 16,
      haltAfterFailures: 1,
    });
    expect(allTargets(config)).toEqual([]);
  });

  it('refuses a fleet beside databaseUrl, naming the environment', () => {
    expect(problemsOf(FLEET.replace('    fleet:', '    databaseUrl: postgres://a\n    fleet:'))).toEqual([
      'line 3: environments.0: more than one of databaseUrl, databases and fleet; set databaseUrl (one database), databases (several, e.g. main and ci) or fleet (targets listed by a source)',
    ]);
  });
});
