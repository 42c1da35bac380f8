// What a change request's steps mean while it runs: which step runs, whether a check passed, which settings
// apply. Pure, used by the workflow and the activities alike.
import type { ChangeStep, CheckStep, Expectation, SqlStep } from './change-request';
import type { Criticality } from './criticality';

export type Phase = 'execute' | 'rollback';

/** Checks that ran in this phase on this environment, by id. */
export type CheckResults = Record<string, 'passed' | 'failed'>;

/** A step with a `when` runs only if its check ran and came out that way. */
export function shouldRun(step: ChangeStep, checks: CheckResults): boolean {
  return !step.when || checks[step.when.check] === step.when.outcome;
}

export interface CheckObservation {
  rowCount: number;
  /** The first column of the first row, as text; null for SQL NULL or no rows. */
  firstValue: string | null;
}

/** Whether a check's result meets its expectation, and what was seen, worded for the status line. */
export function evaluateExpectation(expect: Expectation, observed: CheckObservation): { passed: boolean; observed: string } {
  if ('value' in expect) {
    const passed = observed.rowCount > 0 && observed.firstValue === expect.value;
    const seen = observed.rowCount === 0 ? 'no rows' : `value ${observed.firstValue ?? 'NULL'}`;
    return { passed, observed: `${seen} (expected ${expect.value ?? 'NULL'})` };
  }
  const { op, count } = expect.rows;
  const n = observed.rowCount;
  const passed = op === '=' ? n === count : op === '>' ? n > count : op === '>=' ? n >= count : op === '<' ? n < count : n <= count;
  return { passed, observed: `${n} row${n === 1 ? '' : 's'} (expected ${op === '=' ? '' : op}${count})` };
}

export interface LockSettings {
  lockTimeoutMs: number;
  statementTimeoutMs: number;
  maxWaitMs: number;
}

/** The step's own timeouts, else the CR's lockRetry, else the project's. */
export function stepSettings(project: LockSettings, change: Partial<LockSettings>, step?: Pick<SqlStep, 'lockTimeoutMs' | 'statementTimeoutMs'>): LockSettings {
  return {
    lockTimeoutMs: step?.lockTimeoutMs ?? change.lockTimeoutMs ?? project.lockTimeoutMs,
    statementTimeoutMs: step?.statementTimeoutMs ?? change.statementTimeoutMs ?? project.statementTimeoutMs,
    maxWaitMs: change.maxWaitMs ?? project.maxWaitMs,
  };
}

/** The roles whose approval a CR needs before it runs, by criticality. */
export function requiredApprovals(criticality: Criticality, policy: Record<Criticality, string[]>): string[] {
  return [...new Set(policy[criticality] ?? [])];
}

/** "sql drop-fk", "check orphans", "approval before-delete": how a step is named in statuses. */
export function stepLabel(step: ChangeStep): string {
  return `${step.kind} ${step.id}`;
}

/** The checks and SQL in a step list, for rehearsal and linting. */
export function isCheck(step: ChangeStep): step is CheckStep {
  return step.kind === 'check';
}
