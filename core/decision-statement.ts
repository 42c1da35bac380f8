// The text a signed decision signs: canonical, versioned, one `key: value` a line. Pure (workflows import it):
// hashing and ssh-keygen live in activities/ssh-signatures.ts.

/** The `-n` namespace of `ssh-keygen -Y sign|verify`: a signature made for another purpose never verifies here. */
export const DECISION_NAMESPACE = 'dbchange-decision';
export const STATEMENT_HEADER = 'dbchange decision statement v1';
/** A statement may be signed ahead of time, but not for longer than this. */
export const MAX_STATEMENT_LIFETIME_MS = 7 * 24 * 60 * 60 * 1000;
/** `pause`, `resume` and `cancel` are a person's controls of a backfill. */
export const DECISIONS = ['approve', 'reject', 'resolve', 'rollback', 'pause', 'resume', 'cancel'] as const;
export type Decision = (typeof DECISIONS)[number];

export interface DecisionStatement {
  version: 1;
  workflowId: string;
  runId: string;
  decision: Decision;
  /** The environment of a pipeline gate, the change request's gate, or the database a backfill runs on. */
  gate: string;
  role?: string;
  /** A resolution's action (retry, mark-complete, rollback, abort). */
  action?: string;
  /** A fleet target the decision is about. */
  target?: string;
  user: string;
  /** `sha256:<hex>` of exactly what runs after the gate: a CR's or a backfill file's checksum, or filesDigestText's hash. */
  digest: string;
  /** ISO 8601 UTC, e.g. 2025-06-01T12:00:00Z. */
  expires: string;
}

type StatementField = Exclude<keyof DecisionStatement, 'version'>;
/** The order of the lines; a field left out of a statement (role, action, target) has no line. */
const FIELDS: readonly StatementField[] = ['workflowId', 'runId', 'decision', 'gate', 'role', 'action', 'target', 'user', 'digest', 'expires'];
const OPTIONAL_FIELDS: ReadonlySet<StatementField> = new Set(['role', 'action', 'target']);
const DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;
const UTC_TIME_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

export type ParsedStatement = { ok: true; statement: DecisionStatement } | { ok: false; error: string };

/** The exact text to sign. Throws on a value that could not round-trip (a newline, an empty value, a bad digest). */
export function statementText(statement: DecisionStatement): string {
  const lines = [STATEMENT_HEADER];
  for (const field of FIELDS) {
    const value = statement[field];
    if (value === undefined && OPTIONAL_FIELDS.has(field)) continue;
    const problem = valueProblem(field, value);
    if (problem) throw new Error(`cannot write a decision statement: ${field}: ${problem}`);
    lines.push(`${field}: ${value}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Reads a statement strictly: the exact header, known keys in the fixed order, nothing else. */
export function parseStatement(text: string): ParsedStatement {
  if (!text.endsWith('\n')) return { ok: false, error: 'the statement must end with a newline' };
  const lines = text.slice(0, -1).split('\n');
  if (lines[0] !== STATEMENT_HEADER) return { ok: false, error: `line 1: expected "${STATEMENT_HEADER}"` };
  const values: Partial<Record<StatementField, string>> = {};
  let next = 0;
  for (let index = 1; index < lines.length; index++) {
    const line = lines[index];
    const separator = line.indexOf(': ');
    const key = separator > 0 ? line.slice(0, separator) : line;
    const position = FIELDS.indexOf(key as StatementField);
    if (separator <= 0 || position < 0) return { ok: false, error: `line ${index + 1}: expected "key: value" with a known key (${FIELDS.join(', ')})` };
    if (position < next) return { ok: false, error: `line ${index + 1}: ${key} is repeated or out of order (order: ${FIELDS.join(', ')})` };
    const skipped = FIELDS.slice(next, position).find((field) => !OPTIONAL_FIELDS.has(field));
    if (skipped) return { ok: false, error: `line ${index + 1}: expected ${skipped} before ${key}` };
    const value = line.slice(separator + 2);
    const problem = valueProblem(key as StatementField, value);
    if (problem) return { ok: false, error: `line ${index + 1}: ${key}: ${problem}` };
    values[key as StatementField] = value;
    next = position + 1;
  }
  const missing = FIELDS.slice(next).find((field) => !OPTIONAL_FIELDS.has(field));
  if (missing) return { ok: false, error: `line ${lines.length + 1}: ${missing} is missing` };
  const statement: DecisionStatement = {
    version: 1,
    workflowId: values.workflowId!,
    runId: values.runId!,
    decision: values.decision as Decision,
    gate: values.gate!,
    ...(values.role !== undefined ? { role: values.role } : {}),
    ...(values.action !== undefined ? { action: values.action } : {}),
    ...(values.target !== undefined ? { target: values.target } : {}),
    user: values.user!,
    digest: values.digest!,
    expires: values.expires!,
  };
  return { ok: true, statement };
}

function valueProblem(field: StatementField, value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '') return 'must be a non-empty string';
  if (/[\r\n]/.test(value)) return 'must not contain a line break';
  if (value.trim() !== value) return 'must not start or end with spaces';
  if (field === 'decision' && !(DECISIONS as readonly string[]).includes(value)) return `must be one of ${DECISIONS.join(', ')}`;
  if (field === 'digest' && !DIGEST_PATTERN.test(value)) return 'must be sha256: and 64 lowercase hex digits';
  if (field === 'expires' && !(UTC_TIME_PATTERN.test(value) && Number.isFinite(Date.parse(value)))) return 'must be an ISO 8601 UTC time such as 2025-06-01T12:00:00Z';
  return undefined;
}

/**
 * Why a signed statement does not permit the decision being made, or undefined when it does: the first field
 * that differs, in the statement's order, then its expiry.
 */
export function statementMismatch(signed: DecisionStatement, expected: Omit<DecisionStatement, 'expires'>, nowMs: number): string | undefined {
  const differs = (field: Exclude<StatementField, 'expires'>) => signed[field] !== expected[field];
  const named = (value: string | undefined, what: string) => (value === undefined ? `no ${what}` : `${what} ${value}`);
  if (signed.version !== expected.version) return `signed as statement version ${signed.version}, not ${expected.version}`;
  if (differs('workflowId')) return `signed for workflow ${signed.workflowId}, not ${expected.workflowId} (a signature cannot be replayed on another workflow)`;
  if (differs('runId')) return `signed for run ${signed.runId}, not ${expected.runId} (a signature cannot be replayed on another run of ${expected.workflowId})`;
  if (differs('decision')) return `signed to ${signed.decision}, not to ${expected.decision}`;
  if (differs('gate')) return `signed for gate ${signed.gate}, not ${expected.gate}`;
  if (differs('role')) return `signed for ${named(signed.role, 'role')}, but this decision is for ${named(expected.role, 'role')}`;
  if (differs('action')) return `signed for ${named(signed.action, 'action')}, but this decision is for ${named(expected.action, 'action')}`;
  if (differs('target')) return `signed for ${named(signed.target, 'target')}, but this decision is for ${named(expected.target, 'target')}`;
  if (differs('user')) return `signed by ${signed.user} but sent as ${expected.user}`;
  if (differs('digest')) {
    return `signed for digest ${shortDigest(signed.digest)}, but what runs after this gate is ${shortDigest(expected.digest)} (the change or the pending files changed since it was signed)`;
  }
  const expiresMs = Date.parse(signed.expires);
  if (!Number.isFinite(expiresMs)) return `the statement's expiry ${signed.expires} is not a time (sign a new one)`;
  if (expiresMs <= nowMs) return `the statement expired at ${signed.expires} (sign a new one)`;
  if (expiresMs - nowMs > MAX_STATEMENT_LIFETIME_MS) return `the statement expires at ${signed.expires}: expires too far ahead; at most 7 days (sign one that expires sooner)`;
  return undefined;
}

/** `sha256:ab12cd34ef56…`: enough to tell two digests apart in a message. */
export function shortDigest(digest: string): string {
  const [algorithm, hex] = digest.includes(':') ? digest.split(':', 2) : ['', digest];
  const short = hex.length > 12 ? `${hex.slice(0, 12)}…` : hex;
  return algorithm ? `${algorithm}:${short}` : short;
}

/** A change request's digest: its checksum (hex sha256 of the file, as checksumOfText gives it). */
export function checksumDigest(checksum: string): string {
  return `sha256:${checksum}`;
}

/**
 * The canonical text whose sha256 is a pipeline gate's digest: one `version:checksum` line per pending file, led
 * by its database's address (`staging/ci version:checksum`) when the entry names one, sorted so the order they
 * were listed in does not matter. Workflows cannot hash (no Node crypto there): an activity hashes this text with
 * digestOfFiles (activities/ssh-signatures.ts).
 */
export function filesDigestText(entries: readonly { version: string; checksum: string; target?: string }[]): string {
  return entries
    .map((entry) => `${entry.target === undefined ? '' : `${entry.target} `}${entry.version}:${entry.checksum}\n`)
    .sort()
    .join('');
}
