// Receives human decisions (signals or updates), checks who may make them, and records every one.
import { condition, setHandler } from '@temporalio/workflow';
import {
  checkApprovalPayload,
  checkRejectionPayload,
  checkResolutionPayload,
  isApprover,
  refusalReason,
  type Checked,
  type DecisionRecord,
  type Resolution,
  type ResolveAction,
} from '../core/decisions';
import { formatDuration } from '../core/duration';
import { approve, approveUpdate, reject, rejectUpdate, resolve, resolveUpdate, type DecisionAnswer } from './messages';

type Waiting =
  | { kind: 'approval'; environment: string; roles: string[] }
  | { kind: 'resolution'; environment?: string; actions: readonly ResolveAction[] };

export type ApprovalOutcome = { approved: true; by: string } | { approved: false; by?: string; reason: string };

export class DecisionDesk {
  readonly decisions: DecisionRecord[] = [];
  private waiting: Waiting | undefined;
  private approval: ApprovalOutcome | undefined;
  private resolution: Resolution | undefined;

  constructor(
    private readonly approvers: Record<string, string[]>,
    private readonly requestedBy: string,
  ) {}

  /** Registers approve/reject/resolve as signals and as updates; malformed update payloads are refused by the validator. */
  install(): void {
    setHandler(approve, (payload) => void this.onApprove(payload));
    setHandler(reject, (payload) => void this.onReject(payload));
    setHandler(resolve, (payload) => void this.onResolve(payload));
    setHandler(approveUpdate, (payload) => this.onApprove(payload), { validator: (payload) => mustBeValid(checkApprovalPayload(payload)) });
    setHandler(rejectUpdate, (payload) => this.onReject(payload), { validator: (payload) => mustBeValid(checkRejectionPayload(payload)) });
    setHandler(resolveUpdate, (payload) => this.onResolve(payload), {
      validator: (payload) => mustBeValid(checkResolutionPayload(payload)),
    });
  }

  /** Waits for one approval in any of `roles`, a rejection, or the timeout. */
  async waitForApproval(environment: string, roles: string[], timeoutMs: number): Promise<ApprovalOutcome> {
    this.waiting = { kind: 'approval', environment, roles };
    this.approval = undefined;
    const decided = await condition(() => this.approval !== undefined, timeoutMs);
    this.waiting = undefined;
    return decided ? this.approval! : { approved: false, reason: `no approval within ${formatDuration(timeoutMs)}` };
  }

  /** Waits, without a time limit, for a person to say how to go on after a failure. */
  async waitForResolution(environment: string | undefined, actions: readonly ResolveAction[]): Promise<Resolution> {
    this.waiting = { kind: 'resolution', environment, actions };
    this.resolution = undefined;
    await condition(() => this.resolution !== undefined);
    this.waiting = undefined;
    return this.resolution!;
  }

  private onApprove(payload: unknown): DecisionAnswer {
    const checked = checkApprovalPayload(payload);
    if (!checked.ok) return this.refuse('approve', payload, checked.error);
    const { user, role, comment } = checked.value;
    const waiting = this.waiting;
    if (waiting?.kind !== 'approval') return this.refuse('approve', payload, 'nothing is waiting for an approval now');
    const refusal = refusalReason({ approvers: this.approvers, roles: waiting.roles, requestedBy: this.requestedBy }, user, role);
    if (refusal) return this.refuse('approve', payload, refusal);
    this.approval = { approved: true, by: user };
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
    const { user, action, comment } = checked.value;
    if (!allowed) return this.refuse('resolve', payload, 'nothing is blocked now');
    if (!isApprover(this.approvers, user)) return this.refuse('resolve', payload, `${user} is not a configured approver (add them under approvers in dbchange.yaml)`);
    this.resolution = checked.value;
    return this.accept({ kind: 'resolve', user, action, comment, environment: waiting?.environment }, `resolved: ${action}`);
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

function mustBeValid<T>(checked: Checked<T>): void {
  if (!checked.ok) throw new Error(checked.error);
}
