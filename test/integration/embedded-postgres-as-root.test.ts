import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { installedBinaries, startEmbeddedPostgres, type EmbeddedPostgres } from '../../examples/demo/embedded-db';
import { freePort } from '../../examples/demo/ports';
import { query } from '../helpers/postgres';

const IS_ROOT = process.getuid?.() === 0;
const WORLD_WRITABLE = 0o002;

/** A folder only root may enter (as /root, or a clone in `mktemp -d`), holding a copy of the binaries. */
function privateClone(): { folder: string; binariesDir: string } {
  const folder = mkdtempSync(join(tmpdir(), 'dbchange-private-clone-'));
  expect(statSync(folder).mode & 0o777).toBe(0o700);
  return { folder, binariesDir: join(folder, 'native') };
}

function everyPathUnder(folder: string): string[] {
  return [folder, ...readdirSync(folder, { recursive: true, encoding: 'utf8' }).map((entry) => join(folder, entry))];
}

// Only root runs PostgreSQL as another OS user (postgres); as anyone else the cluster runs as the current user.
describe.skipIf(!IS_ROOT)('embedded PostgreSQL started as root from a folder only root may enter (skipped unless root)', () => {
  const folders: string[] = [];
  const clusters: EmbeddedPostgres[] = [];
  afterEach(async () => {
    for (const cluster of clusters.splice(0)) await cluster.remove();
    for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
  });

  it('runs the binaries and data from a private folder of the user postgres, answers a query, and removes that folder', async () => {
    const clone = privateClone();
    folders.push(clone.folder);
    const installed = await installedBinaries();
    for (const part of ['bin', 'lib', 'share']) cpSync(join(installed, part), join(clone.binariesDir, part), { recursive: true, verbatimSymlinks: true });

    const cluster = await startEmbeddedPostgres({ dataDir: join(clone.folder, 'data'), port: await freePort(), databases: ['as_root'], binariesDir: clone.binariesDir });
    clusters.push(cluster);
    expect(await query(cluster.urlOf('as_root'), 'SELECT current_database() AS name, current_user AS role')).toEqual([{ name: 'as_root', role: 'postgres' }]);

    const home = dirname(cluster.dataDir);
    expect(home.startsWith(clone.folder)).toBe(false);
    expect(statSync(home).mode & 0o777).toBe(0o750);
    expect(statSync(home).uid).toBe(0);
    expect(statSync(cluster.dataDir).mode & 0o777).toBe(0o700);
    expect(statSync(cluster.dataDir).uid).not.toBe(0);
    expect(everyPathUnder(home).filter((path) => statSync(path).mode & WORLD_WRITABLE)).toEqual([]);

    await cluster.stop();
    await cluster.start();
    expect(await query(cluster.urlOf('as_root'), 'SELECT 1 AS up')).toEqual([{ up: 1 }]);
    await cluster.remove();
    expect(existsSync(home)).toBe(false);
  });

  it('says in one line which folder the user postgres may not enter, and how to fix it, and leaves nothing behind', async () => {
    const clone = privateClone();
    folders.push(clone.folder);
    const before = process.env.TMPDIR;
    process.env.TMPDIR = clone.folder; // the private copy would land where the user postgres cannot reach it
    try {
      const failure = startEmbeddedPostgres({ dataDir: join(clone.folder, 'data'), port: await freePort() });
      await expect(failure).rejects.toThrow(/^embedded PostgreSQL cannot start: the OS user postgres may not run the binaries in .*dbchange-private-clone-.*: point TMPDIR at a folder every user may enter/);
      await expect(failure).rejects.toThrow(/^[^\n]*$/);
    } finally {
      if (before === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = before;
    }
    expect(readdirSync(clone.folder)).toEqual([]);
  });
});
