// One Temporal dev server for the whole run, with dbchange's search attributes; each test gets its own task queue.
import { execFileSync } from 'node:child_process';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { TestProject } from 'vitest/node';
import type {} from 'vitest';
import { ALL_SEARCH_ATTRIBUTES } from '../../core/search-attributes';
import { ISOLATED_NAMESPACE } from './namespaces';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalCli: string;
  }
}

export default async function setup(project: TestProject) {
  const cli = execFileSync('bash', ['scripts/temporal-cli.sh'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: cli },
      searchAttributes: ALL_SEARCH_ATTRIBUTES,
      log: { format: 'pretty', level: 'error' },
      extraArgs: ['--namespace', ISOLATED_NAMESPACE],
    },
  });
  project.provide('temporalAddress', env.address);
  project.provide('temporalCli', cli);
  return async () => {
    await env.teardown();
  };
}
