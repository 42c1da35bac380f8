// Receives human decisions (signals or updates), checks who may make them, and records every one.
import { condition, setHandler } from '@temporalio/workflow';
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
  type TargetChoice,
  targetRefusal,
} from '../core/decisions';
import { formatDuration } from '../core/duration';
import { approve, approveUpdate, reject, rejectUpdate, resolve, resolveUpdate, rollback, rollbackUpdate, type DecisionAnswer } from './messages';

type Waiting =
  /** One approval in any of `roles`; or, with `approvedBy`, one per role, each from a different person. */
  | { kind: 'approval'; environment: string; roles: string[]; approvedBy?: Record<string, string>; onApproved?: (role: string, user: string) => void }
  | { kind: 'resolution'; environment?: string; actions: readonly ResolveAction[]; targets?: TargetChoice };

export type ApprovalOutcome = { approved: true; by: string } | { approved: false; by?: string; reason: string };

export class DecisionDesk {
  readonly decisions: DecisionRecord[] = [];
  private waiting: Waiting | undefined;
  private approval: ApprovalOutcome | undefined;
  private resolution: Resolution | undefined;

  constructor(
    private readonly approvers: Record<string, string[]>,
    private readonly requestedBy: string,
    /** Change requests: approvals must name this checksum of the CR file. */
    private readonly checksum?: string,
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
  async waitForApproval(environment: string, roles: string[], timeoutMs: number): Promise<ApprovalOutcome> {
    this.waiting = { kind: 'approval', environment, roles };
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

  private onApprove(payload: unknown): DecisionAnswer {
    const checked = checkApprovalPayload(payload);
    if (!checked.ok) return this.refuse('approve', payload, checked.error);
    const { user, role, comment } = checked.value;
    const waiting = this.waiting;
    if (waiting?.kind !== 'approval') return this.refuse('approve', payload, 'nothing is waiting for an approval now');
    const checksumProblem = this.checksum === undefined ? undefined : checksumRefusal(checked.value.checksum, this.checksum);
    if (checksumProblem) return this.refuse('approve', payload, checksumProblem);
    const approvedBy = waiting.approvedBy;
    const open = approvedBy ? waiting.roles.filter((needed) => !approvedBy[needed]) : waiting.roles;
    const refusal = refusalReason({ approvers: this.approvers, roles: open, requestedBy: this.requestedBy }, user, role) ?? (approvedBy && secondRoleRefusal(approvedBy, user, waiting.roles));
    if (refusal) return this.refuse('approve', payload, refusal);
    if (approvedBy) {
      approvedBy[role] = user;
      waiting.onApproved?.(role, user);
    } else this.approval = { approved: true, by: user };
    return this.accept({ kind: 'approve', user, role, comment, environment: waiting.environment }, `approved ${waiting.environment} as ${role}`);
  }

  private onReject(payload: unknown): DecisionAnswer {
    const checked = checkRejectionPayload(payload);
    if (!checked.ok) return this.refuse('reject', payload, checked.error);
    const { user, reason } = checked.value;
    const waiting = this.waiting;
    if (waiting?.kind !== 'approval') return this.refuse('reject', payload, 'nothing is waiting for an approval now');
    const refusal = refusalReason({ approvers: this.approvers, roles: waiting.roles, requestedBy: this.requestedBy }, user);
    // The requester may withdraw their own change; anyone else needs an approving role.
    if (refusal && user !== this.requestedBy) return this.refuse('reject', payload, refusal);
    this.approval = { approved: false, by: user, reason: `rejected by ${user}: ${reason}` };
    return this.accept({ kind: 'reject', user, comment: reason, environment: waiting.environment }, `rejected ${waiting.environment}`);
  }

  private onResolve(payload: unknown): DecisionAnswer {
    const waiting = this.waiting;
    const allowed = waiting?.kind === 'resolution' ? waiting.actions : undefined;
    const checked = checkResolutionPayload(payload, allowed);
    if (!checked.ok) return this.refuse('resolve', payload, checked.error);
    const { user, action, comment, target } = checked.value;
    if (!allowed) return this.refuse('resolve', payload, 'nothing is blocked now');
    if (!isApprover(this.approvers, user)) return this.refuse('resolve', payload, `${user} is not a configured approver (add them under approvers in dbchange.yaml)`);
    const targets = waiting?.kind === 'resolution' ? waiting.targets : undefined;
    const targetProblem = targets ? targetRefusal(targets, target, action) : target !== undefined ? `--target names a blocked fleet target; none waits for a decision now (${waiting?.environment ?? 'this pipeline'} accepts ${allowed.join('|')} without --target)` : undefined;
    if (targetProblem) return this.refuse('resolve', payload, targetProblem);
    this.resolution = checked.value;
    return this.accept({ kind: 'resolve', user, action, comment, environment: waiting?.environment, ...(target ? { target } : {}) }, `resolved: ${action}${target ? ` for ${target}` : ''}`);
  }

  private onRollback(payload: unknown): DecisionAnswer {
    const checked = checkRollbackPayload(payload);
    if (!checked.ok) return this.refuse('rollback', payload, checked.error);
    const { user, reason } = checked.value;
    const waiting = this.waiting;
    if (waiting?.kind !== 'resolution' || !waiting.actions.includes('rollback')) {
      return this.refuse('rollback', payload, 'a rollback is accepted once the change is complete (within its rollback window) or blocked; it is neither now');
    }
    if (!isApprover(this.approvers, user) && user !== this.requestedBy) {
      return this.refuse('rollback', payload, `${user} is not a configured approver (add them under approvers in dbchange.yaml)`);
    }
    this.resolution = { user, action: 'rollback', comment: reason };
    return this.accept({ kind: 'rollback', user, action: 'rollback', comment: reason, environment: waiting.environment }, 'rollback requested');
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
