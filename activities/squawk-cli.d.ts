// squawk-cli ships no types; this is the one function dbchange uses from it.
declare module 'squawk-cli/js/index.js' {
  /** The path of the native squawk binary for this platform (from its optional per-platform package). */
  export function getBinaryPath(): string;
}
