// dbchange as a user gets it: the packed tarball installed into an empty folder, with the clone's dist/ out of reach.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../examples/demo/ports';
import { assertBuilt, REPO_ROOT } from '../helpers/processes';
import { createDatabase, query } from '../helpers/postgres';
import { eventually } from '../helpers/stack';

const DIST = join(REPO_ROOT, 'dist');
const HIDDEN_DIST = join(REPO_ROOT, 'dist.hidden-by-installed-package-test');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface PackedFile {
  path: string;
}

/** Runs a command to its end; never throws on a non-zero exit. */
function run(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Run> {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not exit within ${timeoutMs}ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The environment of a person in a fresh shell: none of npm's or the test run's own settings. */
function userEnvironment(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, USER: process.env.USER ?? 'dev' };
  for (const key of Object.keys(env)) {
    if (/^npm_/i.test(key) || key === 'INIT_CWD' || key.startsWith('VITEST') || key.startsWith('DBCHANGE_') || key.startsWith('TEMPORAL_')) delete env[key];
  }
  return { ...env, ...extra };
}

/** Puts the clone's dist/ back, also after a run that was killed while it was hidden. */
function restoreDist(): void {
  if (!existsSync(HIDDEN_DIST)) return;
  if (existsSync(DIST)) rmSync(HIDDEN_DIST, { recursive: true, force: true });
  else renameSync(HIDDEN_DIST, DIST);
}

describe('dbchange installed from its package into an empty folder', () => {
  let work: string;
  let database: Awaited<ReturnType<typeof createDatabase>>;
  let temporalCli: string;

  beforeAll(async () => {
    restoreDist();
    assertBuilt();
    // What the shared global setup would provide: the clone's Temporal CLI (built into .tools/bin once).
    temporalCli = execFileSync('bash', ['scripts/temporal-cli.sh'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
    work = realpathSync(mkdtempSync(join(tmpdir(), 'dbchange-installed-')));
    database = await createDatabase('installed');
    // The application's own schema, as its deploy would have left it: the new migration indexes this table.
    await query(database.url, 'CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL)');
  });
  afterAll(async () => {
    restoreDist();
    if (work) rmSync(work, { recursive: true, force: true });
    await database?.drop();
  });

  it(
    'packs, installs from the registry, then init, new, lint, dev and pdm execute --follow run to completion without the clone',
    { timeout: 420_000 },
    async () => {
      // The test command built dist/ already; building again here would rewrite it under other test files.
      const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: REPO_ROOT, env: userEnvironment({}) });
      expect(packed.code, packed.stderr).toBe(0);
      const [tarball] = JSON.parse(packed.stdout) as [{ filename: string; files: PackedFile[] }];
      const paths = tarball.files.map((file) => file.path);
      expect(paths).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'package.json', 'bin/dbchange.js', 'dist/cli/main.js', 'dist/dashboard/server.js', 'dist/worker/worker.js', 'dist/workflow-bundle.js']));
      expect(paths.filter((path) => !/^(LICENSE|README\.md|package\.json|bin\/dbchange\.js|dist\/(activities|cli|core|dashboard|worker|workflows)\/.+\.js|dist\/workflow-bundle\.js)$/.test(path))).toEqual([]);

      const project = join(work, 'project');
      mkdirSync(project);
      renameSync(DIST, HIDDEN_DIST);
      try {
        const installed = await run('npm', ['install', '--no-audit', '--no-fund', join(work, tarball.filename)], { cwd: project, env: userEnvironment({}), timeoutMs: 300_000 });
        expect(installed.code, installed.stderr).toBe(0);

        const env = userEnvironment({ DATABASE_URL: database.url, TEMPORAL_CLI_PATH: temporalCli });
        const dbchange = (...args: string[]) => run('npx', ['dbchange', ...args], { cwd: project, env });

        const init = await dbchange('init');
        expect(init, init.stderr).toMatchObject({ code: 0, stdout: 'created dbchange.yaml\ncreated db/migrate/\ncreated db/post_migrate/\n' });
        const initAgain = await dbchange('init');
        expect(initAgain.code).toBe(3);
        expect(initAgain.stderr).toBe('dbchange: dbchange.yaml already exists; dbchange init never overwrites it: edit it, or move it away and run dbchange init again\n');

        const created = await dbchange('new', 'add_index');
        expect(created.code, created.stderr).toBe(0);
        const [, version] = /^db\/post_migrate\/(\d{14})_add_index\.sql\n$/.exec(created.stdout) ?? [];
        expect(version, created.stdout).toBeDefined();
        const file = join(project, created.stdout.trim());
        expect(readFileSync(file, 'utf8')).toBe('-- migrate:up\n\n\n-- migrate:down\n\n');
        // What the person writes into it.
        writeFileSync(
          file,
          '-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY IF NOT EXISTS items_name ON items (name);\n\n-- migrate:down\nDROP INDEX CONCURRENTLY IF EXISTS items_name;\n',
        );

        const lint = await dbchange('lint');
        expect(lint, lint.stdout).toMatchObject({ code: 0, stderr: '0 findings in 1 file\n' });

        // Without a Temporal CLI anywhere, dev says how to get one, into the installed package's own folder.
        const emptyPath = join(work, 'empty-path');
        mkdirSync(emptyPath);
        const withoutCli: NodeJS.ProcessEnv = { ...env, PATH: emptyPath };
        delete withoutCli.TEMPORAL_CLI_PATH;
        const noCli = await run(process.execPath, [join(project, 'node_modules', '.bin', 'dbchange'), 'dev'], { cwd: project, env: withoutCli });
        expect(noCli.code).toBe(3);
        expect(noCli.stderr).toContain(`\`GOBIN=${join(project, 'node_modules', 'dbchange', '.tools', 'bin')} go install github.com/temporalio/cli/cmd/temporal@v1.5.1\``);

        const port = await freePort();
        const uiPort = await freePort(0, [port]);
        const dev = spawn('npx', ['dbchange', 'dev', '--port', String(port), '--ui-port', String(uiPort)], { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
        let devOutput = '';
        dev.stdout.setEncoding('utf8').on('data', (chunk: string) => (devOutput += chunk));
        dev.stderr.setEncoding('utf8').on('data', (chunk: string) => (devOutput += chunk));
        const devExited = new Promise<void>((resolve) => dev.on('exit', () => resolve()));
        try {
          await eventually(async () => devOutput.includes('dbchange worker:'), `dbchange dev to start a worker (output: ${devOutput})`, 90_000);
          const pipeline = await run('npx', ['dbchange', 'pdm', 'execute', '--follow'], { cwd: project, env: { ...env, TEMPORAL_ADDRESS: `127.0.0.1:${port}` }, timeoutMs: 120_000 });
          expect(pipeline.code, `${pipeline.stdout}\n${pipeline.stderr}\n${devOutput}`).toBe(0);
          expect(pipeline.stderr).toContain('started pdm-development');
          expect(pipeline.stdout).toContain('complete on development');
        } finally {
          // npx runs dbchange, which runs the Temporal dev server: stop the whole group, as Ctrl-C would.
          process.kill(-dev.pid!, 'SIGINT');
          const stopped = await Promise.race([devExited.then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), 30_000))]);
          if (!stopped) process.kill(-dev.pid!, 'SIGKILL');
        }
        expect(await query(database.url, 'SELECT version FROM schema_migrations')).toEqual([{ version }]);
        expect(await query(database.url, "SELECT indexname FROM pg_indexes WHERE tablename = 'items' AND indexname = 'items_name'")).toEqual([{ indexname: 'items_name' }]);
        // The installed package kept its own state beside the project, not in the clone.
        expect(existsSync(join(project, '.dbchange', 'temporal-dev.db'))).toBe(true);
        expect(existsSync(DIST)).toBe(false);
        expect(dirname(file)).toBe(join(project, 'db', 'post_migrate'));
      } finally {
        restoreDist();
      }
    },
  );
});
