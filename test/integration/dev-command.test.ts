import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineStatus } from '../../core/pipeline';
import { queryOverHttp } from '../../examples/chat-ops/http-api';
import { assertBuilt, REPO_ROOT, runCli } from '../helpers/processes';
import { query } from '../helpers/postgres';
import { createProject, migration, type TestProject } from '../helpers/project';
import { eventually } from '../helpers/stack';

describe('dbchange dev', () => {
  let project: TestProject;
  let stateDir: string;

  beforeAll(async () => {
    assertBuilt();
    project = await createProject('dev', {
      environments: [{ name: 'dev-env' }],
      migrations: { '20240801000001_create_notes.sql': migration('CREATE TABLE notes (id bigint PRIMARY KEY);') },
    });
    stateDir = mkdtempSync(join(tmpdir(), 'dbchange-dev-state-'));
  });
  afterAll(async () => {
    await project?.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('starts a dev server with its UI and dbchange search attributes, runs a pipeline, and stops on SIGINT', { timeout: 90_000 }, async () => {
    const port = 27_000 + Math.floor(Math.random() * 1_000);
    const uiPort = port + 1_000;
    const httpPort = port + 2_000;
    const env: NodeJS.ProcessEnv = { ...process.env, DBCHANGE_TASK_QUEUE: 'dev-test' };
    delete env.TEMPORAL_ADDRESS;
    delete env.TEMPORAL_NAMESPACE;
    const dev = spawn(
      process.execPath,
      ['bin/dbchange.js', '--config', project.configPath, 'dev', '--port', String(port), '--ui-port', String(uiPort), '--db-filename', join(stateDir, 'temporal.db'), '--http-port', String(httpPort)],
      { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    dev.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    dev.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => dev.on('exit', (code) => resolve(code)));
    try {
      await eventually(async () => output.includes('dbchange worker:'), `dbchange dev to start (output: ${output})`, 60_000);
      expect(output).toContain(`Web UI at http://localhost:${uiPort}; HTTP API at http://localhost:${httpPort}/api/v1`);
      expect((await fetch(`http://localhost:${uiPort}/`)).status).toBe(200);

      const target = { address: `127.0.0.1:${port}`, taskQueue: 'dev-test', configPath: project.configPath };
      const run = await runCli(target, ['pdm', 'execute', '--as', 'dave', '--follow'], { timeoutMs: 60_000 });
      expect(run.stderr).toContain('started pdm-dev-env');
      expect(run.stdout).toContain('complete on dev-env');
      expect(run.code).toBe(0);
      // stderr is a pipe here, not a terminal: progress comes as plain lines, never rewritten in place.
      expect(run.stderr).not.toContain('\r');
      expect(run.stderr.trimEnd().split('\n').at(-1)).toBe('[complete] complete on dev-env');
      // Chat tooling without dbchange reads the same status over the HTTP API.
      expect(await queryOverHttp<PipelineStatus>(`http://localhost:${httpPort}`, 'default', 'pdm-dev-env', 'status')).toMatchObject({ stage: 'complete' });
      expect(await query(project.urls['dev-env'], 'SELECT version FROM schema_migrations')).toEqual([{ version: '20240801000001' }]);
      // The search attributes the pipeline set are filterable on this server.
      const listed = await runCli(target, ['pdm', 'status', '--json']);
      expect(JSON.parse(listed.stdout).pipelines).toMatchObject([{ workflowId: 'pdm-dev-env', status: 'complete' }]);
    } finally {
      dev.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  });
});
