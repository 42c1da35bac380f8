// Runs squawk (the static migration linter, https://squawkhq.com) on one migration's SQL and reads its JSON report.
import { execFile } from 'node:child_process';
import { getBinaryPath } from 'squawk-cli/js/index.js';
import type { LintFinding } from '../core/lint-rules';

/** dbchange sets lock_timeout and statement_timeout on every statement it runs, so these would only be noise. */
export const SQUAWK_EXCLUDED_RULES = ['require-lock-timeout', 'require-statement-timeout'];
const SQUAWK_TIMEOUT_MS = 60_000;

interface SquawkViolation {
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
  const args = [
    '--reporter',
    'json',
    '--stdin-filepath',
    input.file,
    '--exclude',
    SQUAWK_EXCLUDED_RULES.join(','),
    ...(input.transactional ? ['--assume-in-transaction'] : []),
  ];
  const output = await new Promise<string>((resolve, reject) => {
    // squawk-cli's `bin` is a Node script that starts the native binary: a second Node process for every lint,
    // about 150 ms on a busy machine. The package says where the binary is, so it is started directly.
    const child = execFile(getBinaryPath(), args, { timeout: SQUAWK_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      // squawk exits 1 when it found something: that is a report, not a failure.
      if (error && typeof error.code === 'number' && error.code <= 1 && stdout.trim().startsWith('[')) resolve(stdout);
      else if (error) reject(new Error(`squawk failed on ${input.file}: ${stderr.trim() || error.message}`));
      else resolve(stdout);
    });
    child.stdin?.end(input.sql);
  });
  const violations = JSON.parse(output) as SquawkViolation[];
  return violations.map((violation) => ({
    file: input.file,
    // squawk counts lines and columns from 0.
    line: input.startLine + violation.line,
    column: violation.column + 1,
    rule: violation.rule_name,
    message: violation.message,
    fix: violation.help ?? 'see https://squawkhq.com/docs/' + violation.rule_name,
    source: 'squawk',
  }));
}
