// The change request workflow's public shapes: input, status snapshot, and the labels it shows.
import type { Criticality } from './criticality';
import type { DecisionRecord, SigningGate } from './decisions';
import type { Phase } from './change-steps';
import type { PrecheckFinding } from './prechecks';
import type { RetryNotice } from './step-retries';

export const CHANGE_REQUEST_WORKFLOW_TYPE = 'changeRequest';
export const CHANGE_STATUS_VERSION = 1;

export interface ChangeRequestInput {
  /** Where the CR came from, for messages. */
  file: string;
  /** The CR file's exact text: recorded in history, so what runs is what was approved. */
  content: string;
  /** sha256 of `content`; approvals must name it. */
  checksum: string;
  /** Rehearse every environment in a rolled-back transaction; needs no approval and changes nothing. */
  dryRun?: boolean;
}

export type ChangeStage =
  | 'scheduled'
  | 'waiting-approval'
  | 'waiting-checks'
  | 'in-progress'
  | 'blocked'
  | 'complete'
  | 'rolling-back'
  | 'rolled-back'
  | 'failed'
  | 'rejected'
  | 'rehearsed';

/** Stages after which nothing more happens (complete still accepts a rollback until its window closes). */
export const FINAL_CHANGE_STAGES: readonly ChangeStage[] = ['rolled-back', 'failed', 'rejected', 'rehearsed'];

/** The DbChangeStatus search attribute, in seed 000's words (change::scheduled, change::in-progress, ...). */
export function changeStatusLabel(stage: ChangeStage): string {
  switch (stage) {
    case 'scheduled':
    case 'waiting-approval':
    case 'waiting-checks':
      return 'scheduled';
    case 'in-progress':
    case 'rolling-back':
      return 'in-progress';
    case 'rehearsed':
      return 'complete';
    default:
      return stage;
  }
}

export type StepOutcome = 'applied' | 'already-applied' | 'passed' | 'failed' | 'skipped' | 'approved' | 'rehearsed' | 'not-rehearsed';

export interface StepRecord {
  environment: string;
  phase: Phase;
  id: string;
  kind: 'sql' | 'check' | 'approval';
  outcome: StepOutcome;
  durationMs: number;
  attempts?: number;
  /** SQL steps: lock or statement timeouts retried once the blocking session had finished. */
  lockRetries?: number;
  /** What a check saw, who approved, why a step was skipped, or the error. */
  note?: string;
  /** Dry run only: the locks the step took. */
  locks?: string[];
}

export interface ChangeRequestStatus {
  version: typeof CHANGE_STATUS_VERSION;
  kind: 'cr';
  changeId: string;
  title: string;
  criticality: Criticality;
  checksum: string;
  requestedBy: string;
  dryRun: boolean;
  stage: ChangeStage;
  environments: string[];
  environment?: string;
  phase?: Phase;
  step?: { id: string; kind: string; index: number; total: number };
  waitingFor?: string;
  /** The running step's last failed try, while it waits for the next (waitingFor says it in words). */
  retry?: RetryNotice;
  lastError?: string;
  /** Roles that approve the change before it starts, and who did (each as soon as it is accepted). */
  approvals: { role: string; by?: string }[];
  /** While a decision is awaited: what a signed one must name (`dbchange approve --print-statement`). */
  signing?: SigningGate;
  decisions: DecisionRecord[];
  steps: StepRecord[];
  /** What the data-aware prechecks found before each environment (blocking findings also block the change). */
  findings: (PrecheckFinding & { environment: string })[];
  /** While complete: the time until which `rollback` is accepted. */
  rollbackUntil?: string;
  summary?: string;
}

/** What a change waiting for its approvals waits for: the roles still open, who approved the others, the checksum. */
export function approvalWaitText(approvals: ChangeRequestStatus['approvals'], requestedBy: string, checksum: string): string {
  const open = approvals.filter((approval) => !approval.by).map((approval) => approval.role);
  const given = approvals.flatMap((approval) => (approval.by ? [`${approval.role} approved by ${approval.by}`] : []));
  const who = `${approvals.length > 1 ? 'different people, ' : ''}not ${requestedBy}`;
  return `waiting for approval by ${open.join(' and ')} (${[...given, who].join('; ')}) of checksum ${checksum.slice(0, 12)}`;
}

export function changeWorkflowId(changeId: string, dryRun = false): string {
  return `cr-${changeId}${dryRun ? '-dry-run' : ''}`;
}
