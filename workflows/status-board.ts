// The pipeline's visible state: the `status` query, current details in the UI, and search attributes.
import { log, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { CompatibilityResult } from '../core/compatibility';
import type { DecisionRecord, ResolveAction } from '../core/decisions';
import type { OutOfOrderFinding, OutOfOrderPolicy } from '../core/out-of-order';
import {
  FINAL_STAGES,
  STATUS_VERSION,
  type EnvironmentResult,
  type MigrationGateReport,
  type MigrationOutcome,
  type PipelineInput,
  type PipelineStage,
  type PipelineStatus,
  type QaResult,
} from '../core/pipeline';
import { KIND, PACKAGE } from '../core/search-attributes';
import type { StepProgress } from '../core/step-progress';
import { describeRetry } from '../core/step-retries';
import { Visibility } from './visibility';

const RUNNING_STAGES: PipelineStage[] = ['starting', 'applying', 'qa', 'checking'];

export class StatusBoard {
  private readonly state: PipelineStatus;
  private readonly visibility = new Visibility();

  constructor(input: PipelineInput) {
    this.state = {
      version: STATUS_VERSION,
      kind: 'pdm',
      stage: 'starting',
      environments: input.environments ?? [],
      requestedBy: input.requestedBy,
      packageVersion: input.packageVersion,
      decisions: [],
      results: [],
    };
    upsertSearchAttributes([
      { key: KIND, value: 'pdm' },
      ...(input.packageVersion ? [{ key: PACKAGE, value: input.packageVersion }] : []),
    ]);
    this.publish('starting the pipeline');
  }

  begin(environments: string[], decisions: DecisionRecord[]): void {
    this.state.environments = environments;
    this.state.decisions = decisions;
    this.state.results = environments.map((environment) => ({ environment, migrations: [], done: false }));
  }

  title(): string {
    return `post-deploy migrations${this.state.packageVersion ? ` for ${this.state.packageVersion}` : ''}`;
  }

  environmentList(): string {
    return this.state.environments.join(', ');
  }

  show(stage: PipelineStage, environment: string | undefined, waitingFor: string | undefined): void {
    this.state.stage = stage;
    this.state.environment = environment;
    this.state.waitingFor = waitingFor;
    this.state.retry = undefined;
    // A block keeps pointing at the migration it stopped on.
    if (stage !== 'applying' && stage !== 'blocked') this.state.migration = undefined;
    this.publish(waitingFor ?? stage);
  }

  applying(environment: string, migration: { version: string; name: string; fileName: string }, index: number, total: number): void {
    this.state.stage = 'applying';
    this.state.environment = environment;
    this.state.waitingFor = undefined;
    this.state.retry = undefined;
    this.state.migration = { index: index + 1, total, version: migration.version, name: migration.name };
    this.publish(`applying ${migration.fileName} (${index + 1} of ${total}) on ${environment}`);
  }

  /** The running migration waits for a blocking session, or a try failed and will be tried again. */
  stepProgress({ step, waitingFor, retry }: StepProgress): void {
    if (this.state.stage !== 'applying' || this.state.migration?.version !== step) return;
    this.state.retry = retry;
    this.state.waitingFor = retry ? describeRetry(retry) : waitingFor;
    this.publish(this.state.waitingFor ? `${step} ${this.state.waitingFor}` : `applying ${step}`);
  }

  recordMigration(environment: string, outcome: MigrationOutcome): void {
    this.state.retry = undefined;
    this.result(environment).migrations.push(outcome);
  }

  recordQa(environment: string, qa: QaResult): void {
    this.result(environment).qa = qa;
  }

  recordGateReport(environment: string, fileName: string, report: MigrationGateReport): void {
    const result = this.result(environment);
    // A retried precheck replaces what the file's earlier one found rather than adding to it.
    result.prechecks = [...(result.prechecks ?? []).filter((finding) => !finding.source.startsWith(`${fileName}:`)), ...report.prechecks];
    result.lint = [...(result.lint ?? []).filter((finding) => finding.file !== fileName), ...report.lint];
  }

  recordCompatibility(environment: string, compatibility: CompatibilityResult): void {
    this.result(environment).compatibility = compatibility;
  }

  recordDrift(environment: string, differences: string[]): void {
    this.result(environment).drift = differences;
  }

  /** An environment's out-of-order versions as just listed: replaces what its earlier listing found. */
  recordOutOfOrder(policy: OutOfOrderPolicy, environment: string, finding: OutOfOrderFinding | undefined): void {
    const others = (this.state.outOfOrder?.environments ?? []).filter((item) => item.environment !== environment);
    const environments = finding ? [...others, finding].sort((a, b) => this.state.environments.indexOf(a.environment) - this.state.environments.indexOf(b.environment)) : others;
    this.state.outOfOrder = environments.length > 0 ? { policy, environments } : undefined;
  }

  environmentDone(environment: string): void {
    this.result(environment).done = true;
  }

  countApplied(environment: string): number {
    return this.result(environment).migrations.filter((migration) => migration.outcome === 'applied').length;
  }

  /** Shows the block and the exact actions it accepts. */
  block(environment: string, message: string, actions: readonly ResolveAction[]): void {
    const on = this.state.migration ? ` on ${this.state.migration.version}` : '';
    this.state.lastError = message;
    this.show('blocked', environment, `blocked${on}: ${message} — run \`dbchange resolve ${workflowInfo().workflowId} --as USER --action ${actions.join('|')}\``);
  }

  /** After a person's decision, the blocked step runs again. */
  resume(environment: string, decision: string): void {
    this.show(this.state.migration ? 'applying' : 'starting', environment, undefined);
    this.publish(decision);
  }

  finish(stage: PipelineStage, summary: string): void {
    this.state.summary = summary;
    this.show(stage, undefined, undefined);
    this.publish(summary);
  }

  isFinished(): boolean {
    return FINAL_STAGES.includes(this.state.stage);
  }

  snapshot(): PipelineStatus {
    return { ...this.state, decisions: [...this.state.decisions] };
  }

  private result(environment: string): EnvironmentResult {
    let result = this.state.results.find((item) => item.environment === environment);
    if (!result) {
      result = { environment, migrations: [], done: false };
      this.state.results.push(result);
    }
    return result;
  }

  private publish(headline: string): void {
    const { stage, environment, migration, requestedBy, packageVersion } = this.state;
    const lines = [
      `**${headline}**`,
      [environment && `environment: ${environment}`, migration && `migration ${migration.index} of ${migration.total}: ${migration.version}`]
        .filter(Boolean)
        .join(' · '),
      `stage: ${stage} · requested by ${requestedBy}${packageVersion ? ` · package ${packageVersion}` : ''}`,
    ];
    // The SDK adds the workflow id; the environment makes one pipeline's lines easy to follow per database.
    log.info(headline, { environment, stage, ...(migration ? { version: migration.version } : {}) });
    this.visibility.publish(lines, RUNNING_STAGES.includes(stage) ? 'running' : stage, environment);
  }
}
