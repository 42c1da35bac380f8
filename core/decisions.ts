// Human decisions (approve, reject, resolve): payload checks and who may decide what. Pure, used by workflows.
export const RESOLVE_ACTIONS = ['retry', 'mark-complete', 'rollback', 'abort', 'skip-batch'] as const;
export type ResolveAction = (typeof RESOLVE_ACTIONS)[number];
const MAX_TEXT = 2_000;
/** A decision update larger than this as JSON is refused before it enters history: refusals cannot flood it. */
export const MAX_DECISION_JSON = 8 * 1024;

/** A decision signed with the approver's SSH key: the statement (core/decision-statement.ts) and its SSHSIG. */
export interface SignedDecision {
  statement: string;
  signature: string;
}

export interface Approval {
  user: string;
  role: string;
  comment?: string;
  /** Change requests only: the sha256 (or its first 12+ characters) of the CR file the approver reviewed. */
  checksum?: string;
  signed?: SignedDecision;
}
export interface Rejection {
  user: string;
  reason: string;
  signed?: SignedDecision;
}
/** Asks a complete (or blocked) change request to run its rollback steps. */
export interface RollbackRequest {
  user: string;
  reason: string;
  signed?: SignedDecision;
}
export interface Resolution {
  user: string;
  action: ResolveAction;
  comment?: string;
  /** A fleet's blocked (or given-up) target this decision is about, or `all-blocked`. */
  target?: string;
  signed?: SignedDecision;
}

/** What a decision signed now must name, shown in a workflow's status while it waits for one (`--print-statement`). */
export interface SigningGate {
  runId: string;
  gate: string;
  digest: string;
}

/** `--target all-blocked`: one decision for every blocked target of the wave. */
export const ALL_BLOCKED = 'all-blocked';

/** The targets of a fleet wave that wait for a decision: blocked (failed, to decide), failed (given up). */
export interface TargetChoice {
  blocked: string[];
  failed: string[];
}

/**
 * Why a resolution does not fit a fleet wave's wait, or undefined when it does. With `--target`, retry,
 * mark-complete or abort (give up) one blocked target, or all of them; a given-up target may be retried or marked
 * complete; without `--target`, only abort, which ends the whole pipeline.
 */
export function targetRefusal(choice: TargetChoice, target: string | undefined, action: ResolveAction): string | undefined {
  const names = (list: string[]) => (list.length === 0 ? 'none' : `${list.slice(0, 10).join(', ')}${list.length > 10 ? ` and ${list.length - 10} more` : ''}`);
  if (target === undefined) {
    return action === 'abort' ? undefined : `name the target: --target NAME (blocked: ${names(choice.blocked)}) or --target ${ALL_BLOCKED}; without --target only abort, which ends the pipeline`;
  }
  if (target === ALL_BLOCKED) return choice.blocked.length > 0 ? undefined : `no target is blocked now (given up: ${names(choice.failed)}); name one with --target`;
  if (choice.blocked.includes(target)) return undefined;
  if (choice.failed.includes(target)) return action === 'abort' ? `${target} was already given up; retry or mark-complete it, or abort the pipeline without --target` : undefined;
  return `${target} is not waiting for a decision; blocked: ${names(choice.blocked)}; given up: ${names(choice.failed)}`;
}

/** One entry of a workflow's decision history: accepted or refused, never silently dropped. */
export interface DecisionRecord {
  at: string;
  /** pause, resume, cancel: a person's control of a backfill. */
  kind: 'approve' | 'reject' | 'resolve' | 'rollback' | 'pause' | 'resume' | 'cancel';
  user: string;
  role?: string;
  action?: ResolveAction;
  environment?: string;
  /** A fleet target the decision was about. */
  target?: string;
  comment?: string;
  /** A signed decision: who signed (the person, or a gateway for them), the key's fingerprint, and what was signed. */
  signature?: { signer: string; fingerprint: string; statement: string; signature: string };
  accepted: boolean;
  /** Why it was refused, or what it decided. */
  reason?: string;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

function text(payload: Record<string, unknown>, key: string, required: boolean): Checked<string | undefined> {
  const value = payload[key];
  if (value === undefined || value === null || value === '') {
    return required ? { ok: false, error: `"${key}" is required` } : { ok: true, value: undefined };
  }
  if (typeof value !== 'string') return { ok: false, error: `"${key}" must be a string` };
  if (value.length > MAX_TEXT) return { ok: false, error: `"${key}" is longer than ${MAX_TEXT} characters` };
  return { ok: true, value };
}

function fields<K extends string>(payload: unknown, spec: Record<K, boolean>): Checked<Record<K, string | undefined>> {
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) {
    return { ok: false, error: `expected a JSON object with ${Object.keys(spec).join(', ')}` };
  }
  const result = {} as Record<K, string | undefined>;
  for (const key of Object.keys(spec) as K[]) {
    const checked = text(payload as Record<string, unknown>, key, spec[key]);
    if (!checked.ok) return checked;
    result[key] = checked.value;
  }
  return { ok: true, value: result };
}

/** A signed statement is a few hundred bytes and an SSHSIG of an ed25519 or RSA-4096 key under 2 KB. */
export const MAX_STATEMENT = 1_024;
export const MAX_SIGNATURE = 4_096;

/** The optional `signed` field: a statement and its armored signature, each of bounded size. */
function signedField(payload: unknown): Checked<SignedDecision | undefined> {
  const signed = (payload as { signed?: unknown }).signed;
  if (signed === undefined || signed === null) return { ok: true, value: undefined };
  if (typeof signed !== 'object' || Array.isArray(signed)) return { ok: false, error: '"signed" must be {"statement": "...", "signature": "-----BEGIN SSH SIGNATURE-----..."}' };
  const { statement, signature } = signed as Record<string, unknown>;
  if (typeof statement !== 'string' || typeof signature !== 'string') return { ok: false, error: '"signed" needs "statement" and "signature", both strings' };
  if (statement.length > MAX_STATEMENT) return { ok: false, error: `"signed.statement" is longer than ${MAX_STATEMENT} characters` };
  if (signature.length > MAX_SIGNATURE) return { ok: false, error: `"signed.signature" is longer than ${MAX_SIGNATURE} characters; an SSH signature is under 2 KB` };
  return { ok: true, value: { statement, signature } };
}

/** The payload's text fields, and its `signed` field when there is one. */
function withSigned<T>(payload: unknown, checked: Checked<Record<string, string | undefined>>): Checked<T> {
  if (!checked.ok) return checked;
  const signed = signedField(payload);
  if (!signed.ok) return signed;
  return { ok: true, value: { ...checked.value, ...(signed.value ? { signed: signed.value } : {}) } as T };
}

export function checkApprovalPayload(payload: unknown): Checked<Approval> {
  return withSigned<Approval>(payload, fields(payload, { user: true, role: true, comment: false, checksum: false }));
}

export function checkRejectionPayload(payload: unknown): Checked<Rejection> {
  return withSigned<Rejection>(payload, fields(payload, { user: true, reason: true }));
}

/** A person's pause, resume or cancel of a backfill. */
export interface BackfillControl {
  user: string;
  comment?: string;
  signed?: SignedDecision;
}

export function checkBackfillControlPayload(payload: unknown): Checked<BackfillControl> {
  return withSigned<BackfillControl>(payload, fields(payload, { user: true, comment: false }));
}

export function checkRollbackPayload(payload: unknown): Checked<RollbackRequest> {
  return withSigned<RollbackRequest>(payload, fields(payload, { user: true, reason: true }));
}

/**
 * Why an update must be refused before it enters history, unrecorded: its payload is not a JSON object, or is larger
 * than MAX_DECISION_JSON. Undefined for anything else: the handler refuses that (wrong types, missing user) and records it.
 */
export function unrecordableReason(payload: unknown, check: (payload: unknown) => Checked<unknown>): string | undefined {
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) {
    const checked = check(payload);
    return checked.ok ? undefined : checked.error;
  }
  const size = JSON.stringify(payload).length;
  if (size <= MAX_DECISION_JSON) return undefined;
  return `the payload is ${Math.ceil(size / 1024)} KB as JSON; a decision may be at most ${MAX_DECISION_JSON / 1024} KB (each text at most ${MAX_TEXT} characters)`;
}

const MIN_CHECKSUM_PREFIX = 12;

/** Why an approval's checksum does not name this change's content, or undefined when it does. */
export function checksumRefusal(given: string | undefined, expected: string): string | undefined {
  const short = expected.slice(0, MIN_CHECKSUM_PREFIX);
  if (!given) return `name the checksum you reviewed (checksum ${short}, from \`dbchange cr validate FILE\`)`;
  const normalized = given.trim().toLowerCase();
  if (normalized.length < MIN_CHECKSUM_PREFIX) return `checksum ${given} is too short: give at least ${MIN_CHECKSUM_PREFIX} characters (${short})`;
  if (!expected.startsWith(normalized)) return `checksum ${normalized.slice(0, 16)} is not this change's (${short}): what you reviewed is not what runs; review the file again`;
  return undefined;
}

export function checkResolutionPayload(payload: unknown, allowed: readonly ResolveAction[] = RESOLVE_ACTIONS): Checked<Resolution> {
  const checked = fields(payload, { user: true, action: true, comment: false, target: false });
  if (!checked.ok) return checked;
  const action = checked.value.action as ResolveAction;
  if (!allowed.includes(action)) return { ok: false, error: `"action" must be one of ${allowed.join(', ')}; got "${action}"` };
  const { target, ...rest } = checked.value;
  return withSigned<Resolution>(payload, { ok: true, value: target === undefined ? rest : checked.value });
}

export interface ApprovalPolicy {
  /** user → roles they hold, from dbchange.yaml `approvers`. */
  approvers: Record<string, string[]>;
  /** The gate needs one approval in any of these roles. */
  roles: string[];
  requestedBy: string;
}

/** True when `user` is listed under approvers (own keys only: "constructor" is nobody). */
export function isApprover(approvers: Record<string, string[]>, user: string): boolean {
  return Object.hasOwn(approvers, user) && Array.isArray(approvers[user]);
}

/** Why this person may not decide here, or undefined when they may. */
export function refusalReason(policy: ApprovalPolicy, user: string, role?: string): string | undefined {
  const held = Object.hasOwn(policy.approvers, user) ? policy.approvers[user] : undefined;
  if (!held) return `${user} is not a configured approver (add them under approvers in dbchange.yaml)`;
  if (user === policy.requestedBy) return `${user} requested this change and cannot approve it`;
  if (role !== undefined) {
    if (!held.includes(role)) return `${user} does not hold the role ${role} (holds: ${held.join(', ') || 'none'})`;
    if (!policy.roles.includes(role)) return `role ${role} cannot approve this gate; it needs ${policy.roles.join(' or ')}`;
  } else if (!held.some((r) => policy.roles.includes(r))) {
    return `${user} holds none of the roles this gate needs (${policy.roles.join(', ')})`;
  }
  return undefined;
}
