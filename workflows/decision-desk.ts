// Receives human decisions (signals or updates), checks who may make them, and records every one.
import { condition, patched, setHandler, workflowInfo } from '@temporalio/workflow';
import { parseStatement, statementMismatch, type Decision } from '../core/decision-statement';
import {
  checkApprovalPayload,
  checkRejectionPayload,
  checkResolutionPayload,
  checkRollbackPayload,
  checksumRefusal,
  isApprover,
  refusalReason,
  unrecordableReason,
  type Checked,
  type DecisionRecord,
  type Resolution,
  type ResolveAction,
  type SignedDecision,
  type SigningGate,
  type TargetChoice,
  targetRefusal,
} from '../core/decisions';
import { formatDuration } from '../core/duration';
import { approve, approveUpdate, reject, rejectUpdate, resolve, resolveUpdate, rollback, rollbackUpdate, type DecisionAnswer } from './messages';

/** Since this patch a rollback's signature is checked (under approvals.signatures: required, one is needed). */
const SIGNED_ROLLBACK_PATCH = 'signed-rollback';

/** `digest`: what a signed decision here must name (the pending files of a pipeline gate); else the CR's checksum. */
type Waiting =
  /** One approval in any of `roles`; or, with `approvedBy`, one per role, each from a different person. */
  | { kind: 'approval'; environment: string; roles: string[]; approvedBy?: Record<string, string>; onApproved?: (role: string, user: string) => void; digest?: string }
  | { kind: 'resolution'; environment?: string; actions: readonly ResolveAction[]; targets?: TargetChoice; digest?: string };

export type DecisionSignature = NonNullable<DecisionRecord['signature']>;

/** Signed decisions: whether one is required, and how a signature is checked (an activity: ssh-keygen and the keys in config). */
export interface DecisionSigning {
  required: boolean;
  verify(input: { user: string; statement: string; signature: string }): Promise<{ ok: true; signer: string; fingerprint: string } | { ok: false; reason: string }>;
}

export type ApprovalOutcome = { approved: true; by: string } | { approved: false; by?: string; reason: string };

export class DecisionDesk {
  private waiting: Waiting | undefined;
  private approval: ApprovalOutcome | undefined;
  private resolution: Resolution | undefined;

  constructor(
    private readonly approvers: Record<string, string[]>,
    private readonly requestedBy: string,
    /** Change requests: approvals must name this checksum of the CR file. Backfills: their file's, which signed decisions name. */
    private readonly checksum?: string,
    /** Absent for workflows started before dbchange checked signatures: they accept no signed decision. */
    private readonly signing?: DecisionSigning,
    /** Every decision, accepted or refused; a backfill shares this list with its own pause, resume and cancel. */
    readonly decisions: DecisionRecord[] = [],
  ) {}

  /**
   * Registers approve/reject/resolve as signals and as updates. An update's validator refuses, unrecorded, only a
   * payload that must never enter history (not a JSON object, or too large); the handler refuses and records the rest.
   */
  install(): void {
    setHandler(approve, (payload) => void this.onApprove(payload));
    setHandler(reject, (payload) => void this.onReject(payload));
    setHandler(resolve, (payload) => void this.onResolve(payload));
    setHandler(approveUpdate, (payload) => this.onApprove(payload), { validator: (payload) => refuseUnrecordable(payload, checkApprovalPayload) });
    setHandler(rejectUpdate, (payload) => this.onReject(payload), { validator: (payload) => refuseUnrecordable(payload, checkRejectionPayload) });
    setHandler(resolveUpdate, (payload) => this.onResolve(payload), { validator: (payload) => refuseUnrecordable(payload, checkResolutionPayload) });
  }

  /** Accepts `rollback` (signal and update) while a resolution that allows rollback is awaited. */
  installRollback(): void {
    setHandler(rollback, (payload) => void this.onRollback(payload));
    setHandler(rollbackUpdate, (payload) => this.onRollback(payload), { validator: (payload) => refuseUnrecordable(payload, checkRollbackPayload) });
  }

  /**
   * Waits until every role in `roles` is approved by a different person (none the requester), a rejection, or the
   * timeout; `onApproved` hears of each accepted approval at once, so the status can show it while others are open.
   */
  async waitForApprovals(label: string, roles: string[], timeoutMs: number, onApproved?: (role: string, user: string) => void): Promise<ApprovalOutcome> {
    const approvedBy: Record<string, string> = {};
    this.waiting = { kind: 'approval', environment: label, roles, approvedBy, onApproved };
    this.approval = undefined;
    const decided = await condition(() => this.approval !== undefined || roles.every((role) => approvedBy[role]), timeoutMs);
    this.waiting = undefined;
    if (this.approval) return this.approval;
    if (decided) return { approved: true, by: roles.map((role) => approvedBy[role]).join(', ') };
    const missing = roles.filter((role) => !approvedBy[role]);
    return { approved: false, reason: `no approval by ${missing.join(' and ')} within ${formatDuration(timeoutMs)}` };
  }

  /** Waits for one approval in any of `roles`, a rejection, or the timeout. */
  async waitForApproval(environment: string, roles: string[], timeoutMs: number, digest?: string): Promise<ApprovalOutcome> {
    this.waiting = { kind: 'approval', environment, roles, ...(digest ? { digest } : {}) };
    this.approval = undefined;
    const decided = await condition(() => this.approval !== undefined, timeoutMs);
    this.waiting = undefined;
    return decided ? this.approval! : { approved: false, reason: `no approval within ${formatDuration(timeoutMs)}` };
  }

  /**
   * Waits, without a time limit, for a person to say how to go on after a failure; for a fleet wave, `targets`
   * are the ones a decision may name (see targetRefusal).
   */
  async waitForResolution(environment: string | undefined, actions: readonly ResolveAction[], targets?: TargetChoice): Promise<Resolution> {
    this.waiting = { kind: 'resolution', environment, actions, ...(targets ? { targets } : {}) };
    this.resolution = undefined;
    await condition(() => this.resolution !== undefined);
    this.waiting = undefined;
    return this.resolution!;
  }

  /**
   * While a step runs, `resolve --action abort` stops it: `decided` settles once someone does, or once `withdraw`
   * is called because the step ended; `decision` is the accepted stop, if any.
   */
  offerStop(environment: string): { decided: Promise<unknown>; decision(): Resolution | undefined; withdraw(): void } {
    const waiting: Waiting = { kind: 'resolution', environment, actions: ['abort'] };
    this.waiting = waiting;
    this.resolution = undefined;
    let withdrawn = false;
    return {
      decided: condition(() => withdrawn || this.resolution !== undefined),
      decision: () => (this.waiting === waiting ? this.resolution : undefined),
      withdraw: () => {
        withdrawn = true;
        if (this.waiting === waiting) this.waiting = undefined;
      },
    };
  }

  /** Waits up to `timeoutMs` for a rollback (the `rollback` message, or resolve with action rollback). */
  async waitForRollbackRequest(timeoutMs: number): Promise<Resolution | undefined> {
    this.waiting = { kind: 'resolution', actions: ['rollback'] };
    this.resolution = undefined;
    await condition(() => this.resolution !== undefined, timeoutMs);
    this.waiting = undefined;
    return this.resolution;
  }

  private async onApprove(payload: unknown): Promise<DecisionAnswer> {
    const checked = checkApprovalPayload(payload);
    if (!checked.ok) return this.refuse('approve', payload, checked.error);
    const { user, role, comment, signed } = checked.value;
    const waiting = this.waiting;
    const problem = () => {
      if (this.waiting !== waiting) return 'the gate was decided while the signature was checked';
      if (waiting?.kind !== 'approval') return 'nothing is waiting for an approval now';
      const checksumProblem = this.checksum === undefined ? undefined : checksumRefusal(checked.value.checksum, this.checksum);
      if (checksumProblem) return checksumProblem;
      const approvedBy = waiting.approvedBy;
      const open = approvedBy ? waiting.roles.filter((needed) => !approvedBy[needed]) : waiting.roles;
      return refusalReason({ approvers: this.approvers, roles: open, requestedBy: this.requestedBy }, user, role) ?? (approvedBy && secondRoleRefusal(approvedBy, user, waiting.roles));
    };
    const before = problem();
    if (before) return this.refuse('approve', payload, before);
    const signature = await this.checkSigned({ decision: 'approve', user, role }, signed);
    if (typeof signature === 'string') return this.refuse('approve', payload, signature);
    // Checked again: while an activity verified the signature, others may have decided.
    const after = problem();
    if (after || waiting?.kind !== 'approval') return this.refuse('approve', payload, after || 'nothing is waiting for an approval now');
    if (waiting.approvedBy) {
      waiting.approvedBy[role] = user;
      waiting.onApproved?.(role, user);
    } else this.approval = { approved: true, by: user };
    return this.accept({ kind: 'approve', user, role, comment, environment: waiting.environment, ...signature }, `approved ${waiting.environment} as ${role}`);
  }

  private async onReject(payload: unknown): Promise<DecisionAnswer> {
    const checked = checkRejectionPayload(payload);
    if (!checked.ok) return this.refuse('reject', payload, checked.error);
    const { user, reason, signed } = checked.value;
    const waiting = this.waiting;
    const problem = () => {
      if (this.waiting !== waiting) return 'the gate was decided while the signature was checked';
      if (waiting?.kind !== 'approval') return 'nothing is waiting for an approval now';
      const refusal = refusalReason({ approvers: this.approvers, roles: waiting.roles, requestedBy: this.requestedBy }, user);
      // The requester may withdraw their own change; anyone else needs an approving role.
      return refusal && user !== this.requestedBy ? refusal : undefined;
    };
    const before = problem();
    if (before) return this.refuse('reject', payload, before);
    const signature = await this.checkSigned({ decision: 'reject', user }, signed);
    if (typeof signature === 'string') return this.refuse('reject', payload, signature);
    const after = problem();
    if (after || waiting?.kind !== 'approval') return this.refuse('reject', payload, after || 'nothing is waiting for an approval now');
    this.approval = { approved: false, by: user, reason: `rejected by ${user}: ${reason}` };
    return this.accept({ kind: 'reject', user, comment: reason, environment: waiting.environment, ...signature }, `rejected ${waiting.environment}`);
  }

  private async onResolve(payload: unknown): Promise<DecisionAnswer> {
    const waiting = this.waiting;
    const allowed = waiting?.kind === 'resolution' ? waiting.actions : undefined;
    const checked = checkResolutionPayload(payload, allowed);
    if (!checked.ok) return this.refuse('resolve', payload, checked.error);
    const { user, action, comment, target, signed } = checked.value;
    const problem = () => {
      if (this.waiting !== waiting) return 'the block was decided while the signature was checked';
      if (!allowed) return 'nothing is blocked now';
      if (!isApprover(this.approvers, user)) return `${user} is not a configured approver (add them under approvers in dbchange.yaml)`;
      const targets = waiting?.kind === 'resolution' ? waiting.targets : undefined;
      if (targets) return targetRefusal(targets, target, action);
      return target !== undefined ? `--target names a blocked fleet target; none waits for a decision now (${waiting?.environment ?? 'this pipeline'} accepts ${allowed.join('|')} without --target)` : undefined;
    };
    const before = problem();
    if (before) return this.refuse('resolve', payload, before);
    const signature = await this.checkSigned({ decision: 'resolve', user, action, ...(target ? { target } : {}) }, signed);
    if (typeof signature === 'string') return this.refuse('resolve', payload, signature);
    const after = problem();
    if (after) return this.refuse('resolve', payload, after);
    this.resolution = checked.value;
    return this.accept({ kind: 'resolve', user, action, comment, environment: waiting?.environment, ...(target ? { target } : {}), ...signature }, `resolved: ${action}${target ? ` for ${target}` : ''}`);
  }

  /**
   * A decision's signature, checked against what `gate` permits (by default the one awaited now), then against the
   * keys in dbchange.yaml: the record's `signature` when it verifies, nothing when none is needed, or why it is refused.
   */
  async checkSigned(
    what: { decision: Decision; user: string; role?: string; action?: string; target?: string },
    signed: SignedDecision | undefined,
    gate: { gate: string; digest: string } = this.signingGate(),
  ): Promise<string | { signature?: DecisionSignature }> {
    if (!signed) return this.signing?.required ? 'signatures are required (approvals.signatures: required in dbchange.yaml): sign with --sign-with KEY, or send --signature FILE' : {};
    if (!this.signing) return 'this workflow does not check signatures (it was started before dbchange checked them); decide without --sign-with or --signature';
    const parsed = parseStatement(signed.statement);
    if (!parsed.ok) return `the signed statement is not one dbchange wrote: ${parsed.error}`;
    const { workflowId, runId } = workflowInfo();
    const mismatch = statementMismatch(parsed.statement, { version: 1, workflowId, runId, gate: gate.gate, digest: gate.digest, ...what }, Date.now());
    if (mismatch) return mismatch;
    const verdict = await this.signing.verify({ user: what.user, statement: signed.statement, signature: signed.signature });
    if (!verdict.ok) return verdict.reason;
    return { signature: { signer: verdict.signer, fingerprint: verdict.fingerprint, statement: signed.statement, signature: signed.signature } };
  }

  /** What a decision signed now would have to name, while a decision is awaited; for the status. */
  signingNow(): SigningGate | undefined {
    return this.waiting ? { runId: workflowInfo().runId, ...this.signingGate() } : undefined;
  }

  /** What a decision signed now must name: the gate (environment, change or block) and the digest of what it permits. */
  private signingGate(): { gate: string; digest: string } {
    const waiting = this.waiting;
    const gate = waiting?.environment ?? 'the change';
    const digest = waiting?.digest ?? (this.checksum ? `sha256:${this.checksum}` : 'none');
    return { gate, digest };
  }

  private async onRollback(payload: unknown): Promise<DecisionAnswer> {
    const checked = checkRollbackPayload(payload);
    if (!checked.ok) return this.refuse('rollback', payload, checked.error);
    const { user, reason, signed } = checked.value;
    const waiting = this.waiting;
    const problem = () => {
      if (this.waiting !== waiting) return 'the change moved on while the signature was checked';
      if (waiting?.kind !== 'resolution' || !waiting.actions.includes('rollback')) {
        return 'a rollback is accepted once the change is complete (within its rollback window) or blocked; it is neither now';
      }
      if (!isApprover(this.approvers, user) && user !== this.requestedBy) return `${user} is not a configured approver (add them under approvers in dbchange.yaml)`;
      return undefined;
    };
    const before = problem();
    if (before) return this.refuse('rollback', payload, before);
    // Signed like every decision since this patch; a rollback accepted unsigned before it replays as it ran.
    const signature = patched(SIGNED_ROLLBACK_PATCH) ? await this.checkSigned({ decision: 'rollback', user }, signed) : {};
    if (typeof signature === 'string') return this.refuse('rollback', payload, signature);
    const after = problem();
    if (after) return this.refuse('rollback', payload, after);
    this.resolution = { user, action: 'rollback', comment: reason };
    return this.accept({ kind: 'rollback', user, action: 'rollback', comment: reason, environment: waiting?.environment, ...signature }, 'rollback requested');
  }

  private accept(record: Omit<DecisionRecord, 'at' | 'accepted'>, reason: string): DecisionAnswer {
    this.decisions.push({ ...record, at: new Date().toISOString(), accepted: true, reason });
    return { accepted: true, reason };
  }

  private refuse(kind: DecisionRecord['kind'], payload: unknown, reason: string): DecisionAnswer {
    const user = typeof (payload as { user?: unknown })?.user === 'string' ? String((payload as { user: string }).user).slice(0, 100) : '(missing)';
    const role = typeof (payload as { role?: unknown })?.role === 'string' ? String((payload as { role: string }).role).slice(0, 100) : undefined;
    this.decisions.push({ kind, user, role, environment: this.waiting?.environment, at: new Date().toISOString(), accepted: false, reason });
    return { accepted: false, reason };
  }
}

/** Two-person rule: whoever approved one role may not also approve another. */
function secondRoleRefusal(approvedBy: Record<string, string>, user: string, roles: string[]): string | undefined {
  const earlier = Object.entries(approvedBy).find(([, by]) => by === user);
  return earlier ? `${user} already approved as ${earlier[0]}; ${roles.join(' and ')} need different people` : undefined;
}

/** An update validator: it only reads the payload, so refusing here leaves the workflow's state untouched. */
function refuseUnrecordable(payload: unknown, check: (payload: unknown) => Checked<unknown>): void {
  const reason = unrecordableReason(payload, check);
  if (reason) throw new Error(reason);
}
