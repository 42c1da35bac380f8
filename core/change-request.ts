// A change request (CR) file comes in as YAML written by a person and leaves as a checked plan; every problem is
// reported at once, with its line and field. SQL syntax is checked separately (change-request-file.ts).
import { z } from 'zod';
import { CRITICALITIES, type Criticality } from './criticality';
import { parseDuration } from './duration';
import { DATABASE_NAME_PATTERN, DATABASE_NAME_RULE } from './targets';
import { describeSchemaIssues, durationText, readYamlSource, type YamlSource } from './yaml-source';

export interface ChangeRequest {
  id: string;
  title: string;
  criticality: Criticality;
  requestedBy: string;
  /** In the order the change walks them. */
  environments: string[];
  lockRetry: { lockTimeoutMs?: number; statementTimeoutMs?: number; maxWaitMs?: number };
  steps: ChangeStep[];
  /** Runs, in this order, on every environment the change touched, newest environment first. */
  rollback: ChangeStep[];
}

export type StepOutcomeName = 'passed' | 'failed';

interface StepCommon {
  id: string;
  /** The database it runs on, when its environments have several (dbchange.yaml's `databases:` keys). */
  database?: string;
  /** Line of the step in the file, for messages. */
  line: number;
  /** Run only if the named check, earlier in the same list, came out this way. */
  when?: { check: string; outcome: StepOutcomeName };
}

export interface SqlStep extends StepCommon {
  kind: 'sql';
  sql: string;
  /** Line where the SQL text starts in the file. */
  sqlLine: number;
  transaction: boolean;
  lockTimeoutMs?: number;
  statementTimeoutMs?: number;
  /** Locked with LOCK TABLE, in this order, before the statements (a fixed lock order avoids deadlocks). */
  lockTables: string[];
}

export type Expectation = { rows: { op: Comparison; count: number } } | { value: string | null };
export type Comparison = '=' | '>' | '>=' | '<' | '<=';

export interface CheckStep extends StepCommon {
  kind: 'check';
  query: string;
  queryLine: number;
  expect: Expectation;
  /** stop: a failed check blocks the change; continue: it is recorded and steps may depend on it with `when`. */
  onFail: 'stop' | 'continue';
}

export interface ApprovalStep extends StepCommon {
  kind: 'approval';
  /** One approval in any of these roles lets the plan go on. */
  roles: string[];
}

export type ChangeStep = SqlStep | CheckStep | ApprovalStep;
export const STEP_KINDS = ['sql', 'check', 'approval'] as const;

export class ChangeRequestError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`invalid change request ${file}:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ChangeRequestError';
  }
}

const duration = durationText('200ms, 1s, 15m');
const stepId = z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'use lowercase letters, digits and dashes (e.g. drop-fk)');
const tableName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/, 'a table name, optionally schema-qualified (e.g. public.ci_runners)');
const when = z
  .strictObject({ passed: stepId.optional(), failed: stepId.optional() })
  .refine((value) => (value.passed === undefined) !== (value.failed === undefined), 'name one check: { passed: <check id> } or { failed: <check id> }');
const common = { id: stepId, when: when.optional(), description: z.string().optional() };
const databaseName = z.string().regex(DATABASE_NAME_PATTERN, `a database name as dbchange.yaml's databases: lists it: ${DATABASE_NAME_RULE}`);
const rowsExpectation = z.union([
  z.number().int().min(0),
  z.string().regex(/^(=|>=|<=|>|<)?\s*\d+$/, 'a row count such as 0, ">0" or ">=10"'),
]);

const stepSchemas = {
  sql: z.strictObject({
    ...common,
    database: databaseName.optional(),
    sql: z.string().trim().min(1, 'the SQL to run'),
    transaction: z.boolean().default(true),
    lockTimeout: duration.optional(),
    statementTimeout: duration.optional(),
    lockTables: z.array(tableName).default([]),
  }),
  check: z.strictObject({
    ...common,
    database: databaseName.optional(),
    check: z.string().trim().min(1, 'a read-only query'),
    expect: z.union([z.strictObject({ rows: rowsExpectation }), z.strictObject({ value: z.union([z.string(), z.number(), z.boolean(), z.null()]) })], {
      error: 'expected { rows: 0 }, { rows: ">0" } or { value: ... }',
    }),
    onFail: z.enum(['stop', 'continue']).default('stop'),
  }),
  approval: z.strictObject({ ...common, approval: z.strictObject({ roles: z.array(z.string().min(1)).min(1, 'name at least one role') }) }),
};

const headerSchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, dots, dashes and underscores (it becomes the workflow id cr-<id>)'),
  title: z.string().trim().min(1),
  criticality: z.enum(CRITICALITIES, { error: `one of ${CRITICALITIES.join(', ')}` }),
  requestedBy: z.string().trim().min(1),
  environments: z.array(z.string().min(1)).min(1, 'list at least one environment, in the order to change them'),
  lockRetry: z.strictObject({ lockTimeout: duration.optional(), statementTimeout: duration.optional(), maxWait: duration.optional() }).default({}),
  steps: z.array(z.unknown()).min(1, 'list at least one step'),
  rollback: z.array(z.unknown()).default([]),
  description: z.string().optional(),
});

/** Parses and checks a CR's text; throws ChangeRequestError listing every problem with its line. */
export function parseChangeRequest(text: string, file: string): ChangeRequest {
  const source = readYamlSource(text);
  if (source.syntaxErrors.length > 0) throw new ChangeRequestError(file, source.syntaxErrors);
  const header = headerSchema.safeParse(source.data ?? {});
  const problems = header.success ? [] : describeSchemaIssues(header.error.issues, source);
  const raw = (source.data ?? {}) as { steps?: unknown; rollback?: unknown };
  const steps = parseSteps(raw.steps, 'steps', source, problems);
  const rollback = parseSteps(raw.rollback, 'rollback', source, problems);
  if (header.success) {
    const seen = new Set<string>();
    header.data.environments.forEach((name, index) => {
      if (seen.has(name)) problems.push(`${source.lineOf(['environments', index])}: environments.${index}: "${name}" is listed twice`);
      seen.add(name);
    });
  }
  if (problems.length > 0 || !header.success) throw new ChangeRequestError(file, problems);
  const { lockRetry } = header.data;
  return {
    id: header.data.id,
    title: header.data.title,
    criticality: header.data.criticality,
    requestedBy: header.data.requestedBy,
    environments: header.data.environments,
    lockRetry: {
      lockTimeoutMs: lockRetry.lockTimeout ? parseDuration(lockRetry.lockTimeout) : undefined,
      statementTimeoutMs: lockRetry.statementTimeout ? parseDuration(lockRetry.statementTimeout) : undefined,
      maxWaitMs: lockRetry.maxWait ? parseDuration(lockRetry.maxWait) : undefined,
    },
    steps,
    rollback,
  };
}

function parseSteps(list: unknown, key: 'steps' | 'rollback', source: YamlSource, problems: string[]): ChangeStep[] {
  if (!Array.isArray(list)) return [];
  const steps: ChangeStep[] = [];
  list.forEach((item, index) => {
    const path = [key, index];
    const kinds = STEP_KINDS.filter((kind) => item && typeof item === 'object' && kind in item);
    if (kinds.length !== 1) {
      const found = kinds.length === 0 ? 'none' : kinds.join(' and ');
      problems.push(`${source.lineOf(path)}: ${path.join('.')}: a step has exactly one of sql, check or approval (found ${found})`);
      return;
    }
    const parsed = stepSchemas[kinds[0]].safeParse(item);
    if (!parsed.success) {
      problems.push(...describeSchemaIssues(parsed.error.issues, source, path));
      return;
    }
    steps.push(toStep(parsed.data, path, source));
  });
  problems.push(...stepOrderProblems(steps, key));
  return steps;
}

type ParsedStep = z.infer<(typeof stepSchemas)[keyof typeof stepSchemas]>;

function toStep(raw: ParsedStep, path: PropertyKey[], source: YamlSource): ChangeStep {
  const line = source.lineNumberOf(path) ?? 0;
  const common = {
    id: raw.id,
    line,
    ...('database' in raw && raw.database ? { database: raw.database } : {}),
    when: raw.when && (raw.when.passed ? { check: raw.when.passed, outcome: 'passed' as const } : { check: raw.when.failed!, outcome: 'failed' as const }),
  };
  if ('sql' in raw) {
    return {
      ...common,
      kind: 'sql',
      sql: raw.sql,
      sqlLine: source.textStartLine([...path, 'sql']) ?? line,
      transaction: raw.transaction,
      lockTimeoutMs: raw.lockTimeout ? parseDuration(raw.lockTimeout) : undefined,
      statementTimeoutMs: raw.statementTimeout ? parseDuration(raw.statementTimeout) : undefined,
      lockTables: raw.lockTables,
    };
  }
  if ('check' in raw) {
    return { ...common, kind: 'check', query: raw.check, queryLine: source.textStartLine([...path, 'check']) ?? line, expect: toExpectation(raw.expect), onFail: raw.onFail };
  }
  return { ...common, kind: 'approval', roles: raw.approval.roles };
}

function toExpectation(raw: { rows: number | string } | { value: string | number | boolean | null }): Expectation {
  if ('value' in raw) return { value: raw.value === null ? null : String(raw.value) };
  if (typeof raw.rows === 'number') return { rows: { op: '=', count: raw.rows } };
  const match = /^(=|>=|<=|>|<)?\s*(\d+)$/.exec(raw.rows)!;
  return { rows: { op: (match[1] as Comparison | undefined) ?? '=', count: Number(match[2]) } };
}

/** Step ids are unique in their list, and `when` names a check that comes earlier in the same list. */
function stepOrderProblems(steps: ChangeStep[], key: string): string[] {
  const problems: string[] = [];
  const seen = new Map<string, ChangeStep>();
  steps.forEach((step) => {
    const where = `line ${step.line}: ${key}.${step.id}`;
    if (seen.has(step.id)) problems.push(`${where}: duplicate step id "${step.id}" (first at line ${seen.get(step.id)!.line})`);
    if (step.when) {
      const target = seen.get(step.when.check);
      if (!target) problems.push(`${where}: when: no check "${step.when.check}" before this step in ${key}`);
      else if (target.kind !== 'check') problems.push(`${where}: when: "${step.when.check}" is a ${target.kind} step; when names a check step`);
    }
    seen.set(step.id, step);
  });
  return problems;
}
