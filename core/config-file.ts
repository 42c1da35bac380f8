// Finds and reads dbchange.yaml: --config, then DBCHANGE_CONFIG, then ./dbchange.yaml.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError, DEFAULT_CONFIG_FILE, parseConfig, type DbChangeConfig } from './config';

export function configPath(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(explicit ?? env.DBCHANGE_CONFIG ?? DEFAULT_CONFIG_FILE);
}

export function loadConfig(explicit?: string, env: NodeJS.ProcessEnv = process.env): DbChangeConfig {
  const file = configPath(explicit, env);
  if (!existsSync(file)) {
    throw new ConfigError(file, [
      'file not found; run dbchange from the project folder, or pass --config PATH or set DBCHANGE_CONFIG',
    ]);
  }
  return parseConfig(readFileSync(file, 'utf8'), file, env, dirname(file));
}
