import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, requireDatabaseUrl } from '../../core/config';
import { refusalReason } from '../../core/decisions';
import { formatDuration } from '../../core/duration';
import { parseMigrationFileName } from '../../core/migration-files';

function problemsOf(text: string): string[] {
  try {
    parseConfig(text, 'dbchange.yaml', {}, '/project');
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('fixes found in review', () => {
  it('accepts a databaseUrl that is only ${VAR} while the variable is unset, and names the variable when it is needed', () => {
    const config = parseConfig(
      'migrations: { postDeploy: db/post_migrate }\nenvironments:\n  - name: staging\n    databaseUrl: ${STAGING_DATABASE_URL}\n',
      'dbchange.yaml',
      {},
      '/project',
    );
    expect(config.environments[0].databases[0].url).toBeUndefined();
    expect(() => requireDatabaseUrl(config.environments[0].databases[0])).toThrow(/\$\{STAGING_DATABASE_URL\} is not set/);
  });

  it('gives YAML syntax errors their line', () => {
    expect(problemsOf('a: 1\na: 2\n')[0]).toMatch(/^line 2: /);
  });

  it('reports a duplicate environment together with schema problems', () => {
    const problems = problemsOf(
      'migrations: { postDeploy: x }\nenvironments:\n  - { name: Staging, databaseUrl: u }\n  - { name: staging, databaseUrl: u }\n  - { name: staging, databaseUrl: u }\n',
    );
    expect(problems.some((problem) => problem.includes('environments.0.name'))).toBe(true);
    expect(problems.some((problem) => problem.includes('duplicate environment "staging"'))).toBe(true);
  });

  it('points an unknown key with a nested value at the key line', () => {
    const problems = problemsOf('migrations: { postDeploy: x }\nenvironments:\n  - { name: s, databaseUrl: u }\nnotification:\n  webhookUrl: x\n');
    expect(problems).toContain('line 4: notification: unknown key (check its spelling)');
  });

  it('refuses a zero lock timeout, which PostgreSQL reads as no timeout', () => {
    expect(problemsOf('migrations: { postDeploy: x }\nenvironments: [{ name: s, databaseUrl: u }]\nlockRetry: { lockTimeout: 0ms }\n').join()).toMatch(/lockRetry.lockTimeout: must be above 0/);
  });

  it('treats names of object properties as unknown approvers', () => {
    for (const user of ['constructor', 'toString', '__proto__']) {
      expect(refusalReason({ approvers: { alice: ['eoc'] }, roles: ['eoc'], requestedBy: 'dave' }, user, 'eoc')).toMatch(/not a configured approver/);
    }
  });

  it('refuses versions whose minutes, seconds or day do not exist', () => {
    expect(() => parseMigrationFileName('20230109109999_x.sql')).toThrow(/not a UTC timestamp/);
    expect(() => parseMigrationFileName('20230231000000_x.sql')).toThrow(/not a UTC timestamp/);
    expect(parseMigrationFileName('20240229235959_leap_day.sql').version).toBe('20240229235959');
  });

  it('formats just under a minute as a minute', () => {
    expect(formatDuration(59_999)).toBe('1m 00s');
    expect(formatDuration(59_940)).toBe('59.9s');
  });
});
