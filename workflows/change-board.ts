// A change request's visible state: the `status` query, current details in the UI, and search attributes.
import { log, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { ChangePlan } from '../activities';
import type { ChangeStep } from '../core/change-request';
import type { Phase } from '../core/change-steps';
import { approvalWaitText, CHANGE_STATUS_VERSION, changeStatusLabel, FINAL_CHANGE_STAGES, type ChangeRequestStatus, type ChangeStage, type StepRecord } from '../core/change-status';
import type { DecisionRecord } from '../core/decisions';
import type { PrecheckFinding } from '../core/prechecks';
import { CRITICALITY, KIND } from '../core/search-attributes';
import type { StepProgress } from '../core/step-progress';
import { describeRetry } from '../core/step-retries';
import { Visibility } from './visibility';

export class ChangeBoard {
  private readonly state: ChangeRequestStatus;
  private readonly visibility = new Visibility();

  constructor(plan: ChangePlan, dryRun: boolean, decisions: DecisionRecord[]) {
    const cr = plan.changeRequest;
    this.state = {
      version: CHANGE_STATUS_VERSION,
      kind: 'cr',
      changeId: cr.id,
      title: cr.title,
      criticality: cr.criticality,
      checksum: plan.checksum,
      requestedBy: cr.requestedBy,
      dryRun,
      stage: 'scheduled',
      environments: cr.environments,
      approvals: dryRun ? [] : plan.approvals.map((role) => ({ role })),
      decisions,
      steps: [],
      findings: [],
    };
    upsertSearchAttributes([
      { key: KIND, value: dryRun ? 'cr-dry-run' : 'cr' },
      { key: CRITICALITY, value: cr.criticality },
    ]);
    this.publish(dryRun ? 'dry run scheduled' : 'scheduled');
  }

  title(): string {
    return `${this.state.dryRun ? 'dry run of ' : ''}change ${this.state.changeId} (${this.state.criticality}: ${this.state.title})`;
  }

  show(stage: ChangeStage, environment: string | undefined, waitingFor: string | undefined): void {
    this.state.stage = stage;
    if (environment) this.state.environment = environment;
    this.state.waitingFor = waitingFor;
    this.state.retry = undefined;
    if (stage !== 'in-progress' && stage !== 'rolling-back' && stage !== 'blocked') this.state.step = undefined;
    this.publish(waitingFor ?? stage);
  }

  /** An accepted approval shows at once; while other roles are still open, what the change waits for says who is left. */
  approved(role: string, by: string): void {
    this.state.approvals = this.state.approvals.map((approval) => (approval.role === role ? { role, by } : approval));
    if (this.state.stage === 'waiting-approval' && this.state.approvals.some((approval) => !approval.by)) {
      this.show('waiting-approval', undefined, approvalWaitText(this.state.approvals, this.state.requestedBy, this.state.checksum));
    }
  }

  running(environment: string, phase: Phase, step: ChangeStep, index: number, total: number): void {
    this.state.stage = phase === 'execute' ? 'in-progress' : 'rolling-back';
    this.state.environment = environment;
    this.state.phase = phase;
    this.state.waitingFor = undefined;
    this.state.retry = undefined;
    this.state.step = { id: step.id, kind: step.kind, index: index + 1, total };
    this.publish(`${phase === 'execute' ? 'running' : 'rolling back:'} ${step.kind} ${step.id} (${index + 1} of ${total}) on ${environment}`);
  }

  /** The running step waits for a blocking session, or a try failed and will be tried again. */
  stepProgress({ step, waitingFor, retry }: StepProgress): void {
    const running = this.state.stage === 'in-progress' || this.state.stage === 'rolling-back';
    if (!running || this.state.step?.id !== step) return;
    this.state.retry = retry;
    this.state.waitingFor = retry ? describeRetry(retry) : waitingFor;
    this.publish(this.state.waitingFor ? `step ${step}: ${this.state.waitingFor}` : `running step ${step}`);
  }

  record(step: StepRecord): void {
    this.state.retry = undefined;
    this.state.steps.push(step);
  }

  recordFindings(environment: string, findings: PrecheckFinding[]): void {
    this.state.findings = [...this.state.findings.filter((finding) => finding.environment !== environment), ...findings.map((finding) => ({ ...finding, environment }))];
  }

  /** Environments where at least one SQL step of the change committed, in the order they were changed. */
  changedEnvironments(): string[] {
    const changed = new Set(this.state.steps.filter((step) => step.phase === 'execute' && step.kind === 'sql' && (step.outcome === 'applied' || step.outcome === 'already-applied')).map((step) => step.environment));
    return this.state.environments.filter((environment) => changed.has(environment));
  }

  block(environment: string, message: string, actions: readonly string[]): void {
    this.state.lastError = message;
    const on = this.state.step ? ` on ${this.state.phase} step ${this.state.step.id}` : '';
    this.show('blocked', environment, `blocked${on} (${environment}): ${message} — run \`dbchange resolve ${workflowInfo().workflowId} --as USER --action ${actions.join('|')}\``);
  }

  resume(environment: string, decision: string): void {
    this.show(this.state.phase === 'rollback' ? 'rolling-back' : 'in-progress', environment, undefined);
    this.publish(decision);
  }

  complete(rollbackUntil: string | undefined, summary: string): void {
    this.state.rollbackUntil = rollbackUntil;
    this.state.summary = summary;
    this.show('complete', undefined, rollbackUntil ? `complete; rollback accepted until ${rollbackUntil}` : undefined);
  }

  finish(stage: ChangeStage, summary: string): void {
    this.state.summary = summary;
    this.state.rollbackUntil = undefined;
    this.show(stage, undefined, undefined);
    this.publish(summary);
  }

  isFinished(): boolean {
    return FINAL_CHANGE_STAGES.includes(this.state.stage);
  }

  snapshot(): ChangeRequestStatus {
    return { ...this.state, approvals: [...this.state.approvals], decisions: [...this.state.decisions], steps: [...this.state.steps], findings: [...this.state.findings] };
  }

  private publish(headline: string): void {
    const { stage, environment, step, phase, requestedBy, criticality, checksum } = this.state;
    log.info(headline, { environment, stage, ...(step ? { step: step.id, phase } : {}) });
    this.visibility.publish(
      [
        `**${headline}**`,
        [environment && `environment: ${environment}`, step && `${phase} step ${step.index} of ${step.total}: ${step.kind} ${step.id}`].filter(Boolean).join(' · '),
        `stage: ${stage} · ${criticality} · requested by ${requestedBy} · checksum ${checksum.slice(0, 12)}`,
      ],
      changeStatusLabel(stage),
      environment,
    );
  }
}
