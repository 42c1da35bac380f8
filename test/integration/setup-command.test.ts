import { Connection } from '@temporalio/client';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ALL_SEARCH_ATTRIBUTES } from '../../core/search-attributes';
import { startOwnDevServer, type OwnDevServer } from '../helpers/dev-servers';
import { assertBuilt, parseJsonOutput, runCli, type CliTarget } from '../helpers/processes';

interface SetupJson {
  version: number;
  kind: string;
  namespace: string;
  added: string[];
  alreadyPresent: string[];
}

const run = promisify(execFile);
const NAMES = ALL_SEARCH_ATTRIBUTES.map((key) => key.name);

describe('dbchange setup on a server that has never seen dbchange', () => {
  let server: OwnDevServer;
  let target: CliTarget;

  beforeAll(async () => {
    assertBuilt();
    server = await startOwnDevServer({ searchAttributes: false });
    // setup needs no project: the config path is never read.
    target = { address: server.address, taskQueue: 'unused', configPath: '/nonexistent/dbchange.yaml' };
  });
  afterAll(async () => {
    await server?.stop();
  });

  async function customAttributes(): Promise<Record<string, number>> {
    const connection = await Connection.connect({ address: server.address });
    try {
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
      return (customAttributes ?? {}) as Record<string, number>;
    } finally {
      await connection.close();
    }
  }

  it('registers every search attribute once, then reports them already present', async () => {
    expect(Object.keys(await customAttributes()).filter((name) => name.startsWith('DbChange'))).toEqual([]);

    const first = await runCli(target, ['setup', '--json']);
    expect(first.code, first.stderr).toBe(0);
    const firstJson = parseJsonOutput<SetupJson>(first);
    expect(firstJson).toMatchObject({ version: 1, kind: 'setup', namespace: 'default', alreadyPresent: [] });
    expect([...firstJson.added].sort()).toEqual([...NAMES].sort());

    const registered = await customAttributes();
    for (const key of ALL_SEARCH_ATTRIBUTES) expect(registered[key.name], key.name).toBeDefined();
    // KEYWORD and INT are two different server types: the INT one must not have been registered as KEYWORD.
    expect(registered.DbChangeSeverity).not.toBe(registered.DbChangeStatus);

    const second = await runCli(target, ['setup']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toBe(`namespace default: nothing to add; already present: ${NAMES.join(', ')}\n`);
  });

  it('refuses, naming the fix, when an attribute exists with another type', async () => {
    // A namespace of its own, where someone registered DbChangeStatus as Int.
    const temporal = (...args: string[]) => run(inject('temporalCli'), [...args, '--address', server.address]);
    await temporal('operator', 'namespace', 'create', '--namespace', 'setup-conflict');
    await temporal('operator', 'search-attribute', 'create', '--namespace', 'setup-conflict', '--name', 'DbChangeStatus', '--type', 'Int');
    const result = await runCli({ ...target, namespace: 'setup-conflict' }, ['setup']);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('DbChangeStatus is INT on the server, dbchange needs KEYWORD');
    expect(result.stderr).toContain('temporal operator search-attribute remove --name NAME');
  });
});
