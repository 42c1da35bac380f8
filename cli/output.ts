// How the CLI speaks: data on stdout (--json: one versioned object), progress and errors on stderr.
export const JSON_VERSION = 1;

/** Exit codes, documented in the README. The message and the code are separate concerns. */
export const EXIT = {
  ok: 0,
  failure: 1,
  /** The change waits for a person: an approval, or a decision after a failure. */
  needsHuman: 2,
  /** A request was refused: already running, not allowed, or invalid. */
  refused: 3,
} as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failure,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export function printJson(kind: string, data: object): void {
  process.stdout.write(`${JSON.stringify({ version: JSON_VERSION, kind, ...data }, null, 2)}\n`);
}

/**
 * A reader that leaves early (`dbchange --help | head -3`) is not a failure: what it did not read is dropped and the
 * command ends with its own exit code, instead of dying on an unhandled EPIPE. Other write errors stay loud.
 */
export function tolerateEarlyReaderExit(stream: NodeJS.WritableStream): void {
  if (!stream.listeners('error').includes(ignoreClosedPipe)) stream.on('error', ignoreClosedPipe);
}

function ignoreClosedPipe(error: NodeJS.ErrnoException): void {
  if (error.code !== 'EPIPE') throw error;
}

export function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** A line that rewrites itself on a terminal and prints once per change elsewhere. */
export function createLiveLine(stream: NodeJS.WriteStream = process.stderr): { update(text: string): void; done(): void } {
  let last = '';
  return {
    update(text: string) {
      if (text === last) return;
      last = text;
      if (stream.isTTY) stream.write(`\r\x1b[2K${text.slice(0, (stream.columns ?? 120) - 1)}`);
      else stream.write(`${text}\n`);
    },
    done() {
      if (stream.isTTY && last) stream.write('\n');
    },
  };
}
