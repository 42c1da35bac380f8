import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/config';
import { configPath, loadConfig } from '../../core/config-file';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dbchange-config-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('configPath', () => {
  it('prefers --config, then DBCHANGE_CONFIG, then ./dbchange.yaml', () => {
    expect(configPath('/etc/a.yaml', { DBCHANGE_CONFIG: '/etc/b.yaml' })).toBe('/etc/a.yaml');
    expect(configPath(undefined, { DBCHANGE_CONFIG: '/etc/b.yaml' })).toBe('/etc/b.yaml');
    expect(configPath(undefined, {})).toBe(resolve('dbchange.yaml'));
  });

  it('resolves a relative path against the working directory', () => {
    expect(configPath('conf/dbchange.yaml', {})).toBe(resolve(process.cwd(), 'conf/dbchange.yaml'));
  });
});

describe('loadConfig', () => {
  it('resolves migration folders against the folder of the config file and expands from the given env', () => {
    const file = join(dir, 'dbchange.yaml');
    writeFileSync(
      file,
      'migrations: { postDeploy: db/post_migrate }\nenvironments:\n  - name: staging\n    databaseUrl: ${STAGING_DATABASE_URL}\n',
    );
    const config = loadConfig(undefined, { DBCHANGE_CONFIG: file, STAGING_DATABASE_URL: 'postgres://localhost/app' });
    expect(config.path).toBe(file);
    expect(config.migrations.postDeploy).toBe(join(dir, 'db/post_migrate'));
    expect(config.environments[0].databases[0].url).toBe('postgres://localhost/app');
  });

  it('says how to point at the file when it does not exist', () => {
    const file = join(dir, 'missing.yaml');
    expect(() => loadConfig(file, {})).toThrow(
      new ConfigError(file, ['file not found; run dbchange from the project folder, or pass --config PATH or set DBCHANGE_CONFIG']),
    );
  });

  it('passes the problems of an invalid file through with its absolute path', () => {
    const file = join(dir, 'dbchange.yaml');
    writeFileSync(file, 'migrations: { postDeploy: db }\nenvironments: []\n');
    try {
      loadConfig(file, {});
      expect.unreachable('loadConfig should have thrown');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).file).toBe(file);
      expect((error as ConfigError).problems).toEqual(['line 2: environments: list at least one environment']);
    }
  });
});
