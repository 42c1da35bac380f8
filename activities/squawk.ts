// Runs squawk (the static migration linter, https://squawkhq.com) on one migration's SQL and reads its JSON report.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getBinaryPath } from 'squawk-cli/js/index.js';
import type { LintFinding } from '../core/lint-rules';

/** dbchange sets lock_timeout and statement_timeout on every statement it runs, so these would only be noise. */
export const SQUAWK_EXCLUDED_RULES = ['require-lock-timeout', 'require-statement-timeout'];
const SQUAWK_TIMEOUT_MS = 60_000;

interface SquawkViolation {
  /** The path squawk read, when it linted files rather than stdin. */
  file?: string;
  line: number;
  column: number;
  message: string;
  help: string | null;
  rule_name: string;
}

export interface SquawkInput {
  file: string;
  sql: string;
  /** 1-based line of the file where `sql` starts. */
  startLine: number;
  /** dbchange wraps transactional migrations in a transaction, which squawk should assume. */
  transactional: boolean;
}

export async function runSquawk(input: SquawkInput): Promise<LintFinding[]> {
  const output = await squawk(input.file, input.transactional, [], input.sql);
  return toFindings(JSON.parse(output) as SquawkViolation[], () => input);
}

/**
 * Lints many migrations with one squawk process per transaction mode, not one per file: a plan of thousands of
 * files costs two process starts. Each file's SQL goes to a temporary file that squawk reads by path.
 */
export async function runSquawkOnMany(inputs: SquawkInput[]): Promise<LintFinding[]> {
  if (inputs.length === 0) return [];
  const dir = mkdtempSync(join(tmpdir(), 'dbchange-lint-'));
  try {
    const byPath = new Map(inputs.map((input, index) => [join(dir, `${index}.sql`), input]));
    for (const [path, input] of byPath) writeFileSync(path, input.sql);
    const findings: LintFinding[] = [];
    for (const transactional of [true, false]) {
      const paths = [...byPath].filter(([, input]) => input.transactional === transactional).map(([path]) => path);
      if (paths.length === 0) continue;
      const output = await squawk(`${paths.length} migrations`, transactional, paths);
      findings.push(...toFindings(JSON.parse(output) as SquawkViolation[], (violation) => byPath.get(violation.file ?? '')!));
    }
    return findings;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs squawk on `paths`, or on `stdin` as `label`; its JSON report. */
function squawk(label: string, transactional: boolean, paths: string[], stdin?: string): Promise<string> {
  const args = [
    '--reporter',
    'json',
    ...(stdin !== undefined ? ['--stdin-filepath', label] : []),
    '--exclude',
    SQUAWK_EXCLUDED_RULES.join(','),
    ...(transactional ? ['--assume-in-transaction'] : []),
    ...paths,
  ];
  return new Promise<string>((resolve, reject) => {
    // squawk-cli's `bin` is a Node script that starts the native binary: a second Node process for every lint,
    // about 150 ms on a busy machine. The package says where the binary is, so it is started directly.
    const child = execFile(getBinaryPath(), args, { timeout: SQUAWK_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      // squawk exits 1 when it found something: that is a report, not a failure.
      if (error && typeof error.code === 'number' && error.code <= 1 && stdout.trim().startsWith('[')) resolve(stdout);
      else if (error) reject(new Error(`squawk failed on ${label}: ${stderr.trim() || error.message}`));
      else resolve(stdout);
    });
    // squawk may be done before its stdin is (it reads files, or it failed): its report or exit code tells what happened.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(stdin);
  });
}

function toFindings(violations: SquawkViolation[], inputOf: (violation: SquawkViolation) => SquawkInput): LintFinding[] {
  return violations.map((violation) => {
    const input = inputOf(violation);
    return {
      file: input.file,
      // squawk counts lines and columns from 0.
      line: input.startLine + violation.line,
      column: violation.column + 1,
      rule: violation.rule_name,
      message: violation.message,
      fix: violation.help ?? 'see https://squawkhq.com/docs/' + violation.rule_name,
      source: 'squawk' as const,
    };
  });
}
