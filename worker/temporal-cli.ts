// Finds the Temporal CLI that runs the dev server: TEMPORAL_CLI_PATH, then `temporal` on PATH, then this package's .tools/bin.
// Nothing here downloads or builds it: a clone's scripts/temporal-cli.sh builds it; an installed package says how to get it.
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';

/** The newest release `go install` can build (later tags' go.mod cannot be installed that way). */
export const TEMPORAL_CLI_VERSION = 'v1.5.1';
const OFFICIAL_INSTALL = 'https://docs.temporal.io/develop/run-a-development-server';

/** dbchange's own folder (the one with its package.json): a clone, or node_modules/dbchange once installed. */
export const PACKAGE_ROOT = packageRootAbove(__dirname);

/** Where `go install` puts the CLI for this package, and where the lookup's last step reads it. */
export const OWN_TOOLS_BIN = join(PACKAGE_ROOT, '.tools', 'bin');

export class TemporalCliMissingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemporalCliMissingError';
  }
}

/** The Temporal CLI to run, or a TemporalCliMissingError that says exactly how to get one. */
export function temporalCliPath(env: NodeJS.ProcessEnv = process.env, toolsBin = OWN_TOOLS_BIN): string {
  const explicit = env.TEMPORAL_CLI_PATH;
  if (explicit) {
    if (isExecutableFile(explicit)) return explicit;
    throw new TemporalCliMissingError(`TEMPORAL_CLI_PATH is ${explicit}, which is not an executable file; point it at the temporal binary, or unset it`);
  }
  const onPath = (env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, 'temporal')).find(isExecutableFile);
  if (onPath) return onPath;
  const own = join(toolsBin, 'temporal');
  if (isExecutableFile(own)) return own;
  throw new TemporalCliMissingError(
    `the Temporal CLI is not installed (it runs the dev server); get it with \`GOBIN=${shellWord(toolsBin)} go install github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}\`, ` +
      `or the official install (brew install temporal, or a download put on PATH: ${OFFICIAL_INSTALL}), or set TEMPORAL_CLI_PATH to a temporal binary; then run it again`,
  );
}

/** A path as a shell word the person can paste: quoted only when it has to be. */
function shellWord(path: string): string {
  return /^[\w./-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`;
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function packageRootAbove(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`dbchange's package.json was not found above ${start}`);
  }
}
