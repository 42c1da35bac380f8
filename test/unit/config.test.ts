import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, requireDatabaseUrl, selectEnvironments, type DbChangeConfig } from '../../core/config';

const FILE = '/project/dbchange.yaml';
const BASE = '/project';

const DESIGN_EXAMPLE = `migrations:
  regular: db/migrate
  postDeploy: db/post_migrate
environments:
  - name: staging
    databaseUrl: \${STAGING_DATABASE_URL}
    qa: { command: "npm run qa -- staging", timeout: 30m }
  - name: production
    databaseUrl: \${PRODUCTION_DATABASE_URL}
    approval: { roles: [release-manager] }
approvers:
  alice: [release-manager, eoc]
  bob: [manager]
notifications:
  webhookUrl: \${DBCHANGE_WEBHOOK_URL}
lockRetry: { lockTimeout: 200ms, statementTimeout: 15m, maxWait: 30m }
`;

const FULL_ENV = {
  STAGING_DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/app_staging',
  PRODUCTION_DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/app_production',
  DBCHANGE_WEBHOOK_URL: 'https://hooks.example.com/T000/B000',
};

const MINIMAL = `migrations: { postDeploy: db/post_migrate }
environments:
  - name: staging
    databaseUrl: postgres://localhost/app
`;

function problemsOf(text: string, env: Record<string, string | undefined> = {}): string[] {
  try {
    parseConfig(text, FILE, env, BASE);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('parseConfig', () => {
  it('parses the documented example with its variables expanded and durations in milliseconds', () => {
    expect(parseConfig(DESIGN_EXAMPLE, FILE, FULL_ENV, BASE)).toEqual({
      path: FILE,
      migrations: { regular: '/project/db/migrate', postDeploy: '/project/db/post_migrate', outOfOrder: 'warn' },
      environments: [
        {
          name: 'staging',
          databases: [
            { address: 'staging', environment: 'staging', database: 'main', url: 'postgres://postgres@127.0.0.1:5432/app_staging', missingVariables: [], key: 'databaseUrl' },
          ],
          qa: { command: 'npm run qa -- staging', timeoutMs: 1_800_000 },
          approval: undefined,
        },
        {
          name: 'production',
          databases: [
            { address: 'production', environment: 'production', database: 'main', url: 'postgres://postgres@127.0.0.1:5432/app_production', missingVariables: [], key: 'databaseUrl' },
          ],
          qa: undefined,
          approval: { roles: ['release-manager'], timeoutMs: 86_400_000 },
        },
      ],
      approvers: { alice: ['release-manager', 'eoc'], bob: ['manager'] },
      approverKeys: { alice: [], bob: [] },
      signatures: 'optional',
      gateways: {},
      webhookUrl: 'https://hooks.example.com/T000/B000',
      lockRetry: { lockTimeoutMs: 200, statementTimeoutMs: 900_000, maxWaitMs: 1_800_000, statementTimeoutRetries: 1, maxAttempts: 10 },
      changeLocks: [],
      changeRequests: { approvals: { C1: ['eoc', 'manager'], C2: ['eoc', 'manager'], C3: ['reviewer'], C4: [] }, rollbackWindowMs: 86_400_000, approvalTimeoutMs: 86_400_000 },
      recheckIntervalMs: 60_000,
      gates: { precheckTimeoutMs: 30_000, compatibility: { queries: undefined, pgStatStatements: false }, drift: 'refuse' },
    } satisfies DbChangeConfig);
  });

  it('fills the documented defaults when optional sections are left out', () => {
    const config = parseConfig(
      `${MINIMAL}    qa: { command: npm test }\n    approval: { roles: [eoc] }\n`,
      FILE,
      {},
      BASE,
    );
    expect(config.migrations).toEqual({ regular: undefined, postDeploy: '/project/db/post_migrate', outOfOrder: 'warn' });
    expect(config.environments[0].qa).toEqual({ command: 'npm test', timeoutMs: 30 * 60_000 });
    expect(config.environments[0].approval).toEqual({ roles: ['eoc'], timeoutMs: 24 * 3_600_000 });
    expect(config.approvers).toEqual({});
    expect(config.webhookUrl).toBeUndefined();
    expect(config.lockRetry).toEqual({ lockTimeoutMs: 200, statementTimeoutMs: 15 * 60_000, maxWaitMs: 30 * 60_000, statementTimeoutRetries: 1, maxAttempts: 10 });
    expect(config.changeLocks).toEqual([]);
    expect(config.recheckIntervalMs).toBe(60_000);
  });

  it('reads migrations.outOfOrder and refuses a policy it does not know, naming the choices', () => {
    const withPolicy = (policy: string) => MINIMAL.replace('postDeploy: db/post_migrate', `postDeploy: db/post_migrate, outOfOrder: ${policy}`);
    expect(parseConfig(withPolicy('refuse'), FILE, {}, BASE).migrations.outOfOrder).toBe('refuse');
    expect(parseConfig(withPolicy('allow'), FILE, {}, BASE).migrations.outOfOrder).toBe('allow');
    const problems = problemsOf(withPolicy('sometimes'));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^line 1: migrations\.outOfOrder: .*allow.*warn.*refuse/);
  });

  it('fills the lockRetry defaults a partial section leaves out', () => {
    const config = parseConfig(`${MINIMAL}lockRetry: { lockTimeout: 1s }\nproductionChecks: {}\n`, FILE, {}, BASE);
    expect(config.lockRetry).toEqual({ lockTimeoutMs: 1_000, statementTimeoutMs: 900_000, maxWaitMs: 1_800_000, statementTimeoutRetries: 1, maxAttempts: 10 });
    expect(config.recheckIntervalMs).toBe(60_000);
  });

  it('keeps absolute migration folders as they are', () => {
    const config = parseConfig(MINIMAL.replace('db/post_migrate', '/srv/app/db/post_migrate'), FILE, {}, BASE);
    expect(config.migrations.postDeploy).toBe('/srv/app/db/post_migrate');
  });

  it('expands several variables inside one value and leaves other dollar signs alone', () => {
    const text = `migrations: { postDeploy: "\${MIGRATIONS_ROOT}/post_migrate" }
environments:
  - name: staging
    databaseUrl: "postgres://\${PGUSER}:\${PGPASSWORD}@db:5432/app"
    qa: { command: "echo $HOME \${QA_SUITE}" }
`;
    const config = parseConfig(text, FILE, { MIGRATIONS_ROOT: 'db', PGUSER: 'app', PGPASSWORD: 'p$ss', QA_SUITE: 'smoke' }, BASE);
    expect(config.migrations.postDeploy).toBe('/project/db/post_migrate');
    expect(config.environments[0].databases[0].url).toBe('postgres://app:p$ss@db:5432/app');
    expect(config.environments[0].qa?.command).toBe('echo $HOME smoke');
  });

  it('reports every problem at once, each with its line and key', () => {
    const text = `migrations:
  postDeploy: db/post_migrate
environments:
  - name: Staging
    databaseUrl: postgres://localhost/app
    qa: { command: "npm run qa -- \${QA_TARGET}", timeout: forever }
lockRetry:
  lockTimeout: 200ms
  maxwait: 30m
notifications: { webhookUrl: https://hooks.example.com }
`;
    expect(problemsOf(text)).toEqual([
      'line 6: environments.0.qa.command: environment variable QA_TARGET is not set',
      'line 4: environments.0.name: use lowercase letters, digits and dashes, starting with a letter (e.g. staging)',
      'line 6: environments.0.qa.timeout: expected a duration such as 200ms, 30s, 15m, 24h',
      'line 9: lockRetry.maxwait: unknown key (check its spelling)',
    ]);
  });

  it('puts all problems in the error message under the file name', () => {
    const error = (() => {
      try {
        parseConfig('migrations: { postDeploy: db }\nenvironments: []\nextra: 1\n', FILE, {}, BASE);
      } catch (thrown) {
        return thrown as ConfigError;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error?.name).toBe('ConfigError');
    expect(error?.file).toBe(FILE);
    expect(error?.message).toBe(
      `invalid config ${FILE}:\n` +
        '  - line 2: environments: list at least one environment\n' +
        '  - line 3: extra: unknown key (check its spelling)',
    );
  });

  it('refuses unknown keys at every level, naming the full key', () => {
    const text = `migrations: { postDeploy: db/post_migrate, postdeploy: db/other }
environments:
  - name: staging
    databaseURL: postgres://localhost/app
    databaseUrl: postgres://localhost/app
    approval: { roles: [eoc], role: eoc }
changeLock: []
`;
    const problems = problemsOf(text);
    expect(problems).toHaveLength(4);
    expect(problems).toEqual(
      expect.arrayContaining([
        'line 1: migrations.postdeploy: unknown key (check its spelling)',
        'line 4: environments.0.databaseURL: unknown key (check its spelling)',
        'line 6: environments.0.approval.role: unknown key (check its spelling)',
        'line 7: changeLock: unknown key (check its spelling)',
      ]),
    );
  });

  it('refuses a variable missing from the environment outside secrets', () => {
    const text = MINIMAL.replace('db/post_migrate', '"${MIGRATIONS_DIR}"');
    expect(problemsOf(text)).toContain('line 1: migrations.postDeploy: environment variable MIGRATIONS_DIR is not set');
    expect(() => parseConfig(text, FILE, { MIGRATIONS_DIR: 'db/pdm' }, BASE)).not.toThrow();
  });

  it('counts a variable set to the empty string as missing', () => {
    const text = MINIMAL.replace('db/post_migrate', '"db/${SUBDIR}"');
    expect(problemsOf(text, { SUBDIR: '' })).toEqual(['line 1: migrations.postDeploy: environment variable SUBDIR is not set']);
  });

  describe('secrets the CLI does not need', () => {
    const withSecrets = `migrations: { postDeploy: db/post_migrate }
environments:
  - name: staging
    databaseUrl: "postgres://\${PGUSER}:\${PGPASSWORD}@db/app"
  - name: production
    databaseUrl: "postgres://app@\${PRODUCTION_DB_HOST}/app"
notifications:
  webhookUrl: \${DBCHANGE_WEBHOOK_URL}
`;

    it('parses when variables named in databaseUrl and webhookUrl are unset, and records which ones', () => {
      const config = parseConfig(withSecrets, FILE, { PRODUCTION_DB_HOST: 'prod-db' }, BASE);
      expect(config.environments.map(({ name, databases: [{ url, missingVariables }] }) => ({ name, url, missingVariables }))).toEqual([
        { name: 'staging', url: undefined, missingVariables: ['PGUSER', 'PGPASSWORD'] },
        { name: 'production', url: 'postgres://app@prod-db/app', missingVariables: [] },
      ]);
      expect(config.webhookUrl).toBeUndefined();
    });

    it('never keeps a half-expanded connection string', () => {
      const config = parseConfig(withSecrets, FILE, { PGUSER: 'app' }, BASE);
      expect(config.environments[0].databases[0].url).toBeUndefined();
      expect(config.environments[0].databases[0].missingVariables).toEqual(['PGPASSWORD']);
    });

    it('requireDatabaseUrl says which variables to export where the worker runs', () => {
      const config = parseConfig(withSecrets, FILE, {}, BASE);
      expect(() => requireDatabaseUrl(config.environments[0].databases[0])).toThrow(
        new ConfigError('dbchange.yaml', [
          "environments.staging.databaseUrl: ${PGUSER}, ${PGPASSWORD} is not set in this process's environment; export it where the worker runs",
        ]),
      );
      try {
        requireDatabaseUrl(config.environments[1].databases[0]);
        expect.unreachable('requireDatabaseUrl should have thrown');
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        expect((error as ConfigError).problems[0]).toContain('${PRODUCTION_DB_HOST} is not set');
      }
    });

    it('requireDatabaseUrl returns the connection string once its variables are set', () => {
      const config = parseConfig(withSecrets, FILE, { PGUSER: 'app', PGPASSWORD: 'secret', PRODUCTION_DB_HOST: 'prod-db' }, BASE);
      expect(requireDatabaseUrl(config.environments[0].databases[0])).toBe('postgres://app:secret@db/app');
      expect(requireDatabaseUrl(config.environments[1].databases[0])).toBe('postgres://app@prod-db/app');
    });
  });

  it('refuses an environment without databaseUrl', () => {
    expect(problemsOf('migrations: { postDeploy: db }\nenvironments:\n  - name: staging\n')).toEqual([
      'line 3: environments.0: no database; set databaseUrl (one database), databases (several, e.g. main and ci) or fleet (targets listed by a source)',
    ]);
  });

  it('refuses a duplicate environment name at the line of the repeat', () => {
    const text = `migrations: { postDeploy: db }
environments:
  - name: staging
    databaseUrl: postgres://a
  - name: production
    databaseUrl: postgres://b
  - name: staging
    databaseUrl: postgres://c
`;
    expect(problemsOf(text)).toEqual(['line 7: environments.2.name: duplicate environment "staging"']);
  });

  it('accepts fractional and day durations and refuses bad ones by key', () => {
    const ok = parseConfig(`${MINIMAL}lockRetry: { lockTimeout: 0.5s, maxWait: 1d }\n`, FILE, {}, BASE);
    expect(ok.lockRetry).toEqual({ lockTimeoutMs: 500, statementTimeoutMs: 900_000, maxWaitMs: 86_400_000, statementTimeoutRetries: 1, maxAttempts: 10 });
    expect(problemsOf(`${MINIMAL}lockRetry:\n  statementTimeout: 15min\n  maxWait: 30 minutes\n`)).toEqual([
      'line 6: lockRetry.statementTimeout: expected a duration such as 200ms, 30s, 15m, 24h',
      'line 7: lockRetry.maxWait: expected a duration such as 200ms, 30s, 15m, 24h',
    ]);
  });

  it('refuses a duration written as a number', () => {
    expect(problemsOf(`${MINIMAL}productionChecks: { recheckInterval: 60 }\n`)).toEqual([
      'line 5: productionChecks.recheckInterval: Invalid input: expected string, received number',
    ]);
  });

  it('parses change-lock windows and refuses one that ends before it starts', () => {
    const windows = `changeLocks:
  - { start: "2024-12-20T00:00:00Z", end: "2025-01-02T00:00:00+01:00", reason: year-end freeze }
`;
    expect(parseConfig(MINIMAL + windows, FILE, {}, BASE).changeLocks).toEqual([
      { start: '2024-12-20T00:00:00Z', end: '2025-01-02T00:00:00+01:00', reason: 'year-end freeze' },
    ]);
    const backwards = `changeLocks:
  - start: "2025-01-02T00:00:00Z"
    end: "2024-12-20T00:00:00Z"
    reason: freeze
`;
    expect(problemsOf(MINIMAL + backwards)).toEqual(['line 7: changeLocks.0.end: must be after start']);
  });

  it('refuses change-lock times without a date-time shape', () => {
    const text = `${MINIMAL}changeLocks:\n  - { start: tomorrow, end: "2025-01-02T00:00:00Z", reason: freeze }\n`;
    expect(problemsOf(text)).toEqual(['line 6: changeLocks.0.start: Invalid ISO datetime']);
  });

  it('refuses a YAML syntax error before looking at the contents', () => {
    const problems = problemsOf('migrations: { postDeploy: db\nenvironments: [\n');
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.join('\n')).not.toContain('environments:');
  });

  it('reports both required sections of an empty file', () => {
    expect(problemsOf('')).toEqual([
      'top level: migrations: missing: add it',
      'top level: environments: missing: add it',
    ]);
  });

  it('refuses a document that is not a mapping', () => {
    expect(problemsOf('- staging\n- production\n')).toEqual(['line 1: (top level): Invalid input: expected object, received array']);
  });
});

describe('selectEnvironments', () => {
  const config = parseConfig(DESIGN_EXAMPLE.replace('approvers:', '  - name: dr\n    databaseUrl: postgres://dr\napprovers:'), FILE, FULL_ENV, BASE);

  it('walks every environment in config order when none are asked for', () => {
    expect(selectEnvironments(config, undefined).map((e) => e.name)).toEqual(['staging', 'production', 'dr']);
    expect(selectEnvironments(config, []).map((e) => e.name)).toEqual(['staging', 'production', 'dr']);
  });

  it('keeps config order whatever order they are asked for in', () => {
    expect(selectEnvironments(config, ['dr', 'staging']).map((e) => e.name)).toEqual(['staging', 'dr']);
  });

  it('refuses unknown environments and lists the configured ones', () => {
    expect(() => selectEnvironments(config, ['staging', 'prod', 'qa'])).toThrow(
      new ConfigError(FILE, ['unknown environment "prod", "qa"; configured: staging, production, dr']),
    );
  });
});

describe('changeRequests config', () => {
  it('overrides the approvals of some criticalities and keeps the defaults of the rest', () => {
    const config = parseConfig(`${MINIMAL}changeRequests:\n  approvals: { C3: [dba], C4: [reviewer] }\n  rollbackWindow: 2h\n`, FILE, {}, BASE);
    expect(config.changeRequests).toEqual({
      approvals: { C1: ['eoc', 'manager'], C2: ['eoc', 'manager'], C3: ['dba'], C4: ['reviewer'] },
      rollbackWindowMs: 7_200_000,
      approvalTimeoutMs: 86_400_000,
    });
  });

  it('names an unknown criticality and a bad window with their lines', () => {
    expect(problemsOf(`${MINIMAL}changeRequests:\n  approvals: { C5: [dba] }\n  rollbackWindow: a day\n`)).toEqual([
      'line 6: changeRequests.approvals.C5: unknown key (check its spelling)',
      'line 7: changeRequests.rollbackWindow: expected a duration such as 200ms, 30s, 15m, 24h',
    ]);
  });
});
