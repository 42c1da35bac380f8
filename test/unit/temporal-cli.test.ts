import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { OWN_TOOLS_BIN, PACKAGE_ROOT, temporalCliPath, TemporalCliMissingError } from '../../worker/temporal-cli';

const root = mkdtempSync(join(tmpdir(), 'dbchange-temporal-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A folder holding an executable named temporal (or a plain file, when `executable` is false). */
function folderWithTemporal(name: string, executable = true): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'temporal'), '#!/bin/sh\n');
  chmodSync(join(dir, 'temporal'), executable ? 0o755 : 0o644);
  return dir;
}

describe('the Temporal CLI that dbchange dev runs', () => {
  const explicit = join(folderWithTemporal('explicit'), 'temporal');
  const onPath = folderWithTemporal('on-path');
  const own = folderWithTemporal('own-tools');
  const empty = join(root, 'empty');
  mkdirSync(empty);

  it('is TEMPORAL_CLI_PATH first, then temporal on PATH, then the package\'s own .tools/bin', () => {
    expect(temporalCliPath({ TEMPORAL_CLI_PATH: explicit, PATH: onPath }, own)).toBe(explicit);
    expect(temporalCliPath({ PATH: `${empty}:${onPath}` }, own)).toBe(join(onPath, 'temporal'));
    expect(temporalCliPath({ PATH: empty }, own)).toBe(join(own, 'temporal'));
  });

  it('skips a temporal on PATH that is not executable', () => {
    expect(temporalCliPath({ PATH: folderWithTemporal('not-executable', false) }, own)).toBe(join(own, 'temporal'));
  });

  it('refuses a TEMPORAL_CLI_PATH that is not an executable file instead of running another one', () => {
    expect(() => temporalCliPath({ TEMPORAL_CLI_PATH: join(empty, 'temporal'), PATH: onPath }, own)).toThrow(
      `TEMPORAL_CLI_PATH is ${join(empty, 'temporal')}, which is not an executable file; point it at the temporal binary, or unset it`,
    );
  });

  it('says exactly how to get one when there is none, with the go install command into the package\'s own folder', () => {
    const toolsBin = join(root, 'no tools', 'bin');
    let error: unknown;
    try {
      temporalCliPath({ PATH: empty }, toolsBin);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(TemporalCliMissingError);
    const message = (error as Error).message;
    expect(message).toContain(`\`GOBIN='${toolsBin}' go install github.com/temporalio/cli/cmd/temporal@v1.5.1\``);
    expect(message).toContain('brew install temporal');
    expect(message).toContain('https://docs.temporal.io/develop/run-a-development-server');
    expect(message).not.toContain('\n');
  });

  it("finds the package's own folder from where its code is", () => {
    expect(join(PACKAGE_ROOT, 'worker', 'temporal-cli.ts')).toBe(new URL('../../worker/temporal-cli.ts', import.meta.url).pathname);
    expect(OWN_TOOLS_BIN).toBe(join(PACKAGE_ROOT, '.tools', 'bin'));
  });
});
