// The pipeline's visible state: the `status` query, current details in the UI, and search attributes.
import { log, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { CompatibilityResult } from '../core/compatibility';
import type { DecisionRecord, ResolveAction } from '../core/decisions';
import type { OutOfOrderFinding, OutOfOrderPolicy } from '../core/out-of-order';
import {
  FINAL_STAGES,
  STATUS_VERSION,
  type EnvironmentResult,
  type MigrationOutcome,
  type PipelineInput,
  type PipelineStage,
  type PipelineStatus,
  type QaResult,
  type OutcomeCounts,
  type TargetResult,
} from '../core/pipeline';
import { fleetGrid, type FleetGrid } from '../core/fleet-grid';
import { fleetStatus, type FleetState } from '../core/fleet-progress';
import { parseTargetAddress } from '../core/targets';
import { addOutcome, compactDecisions, emptyCounts, emptyResult, keepRecent, RECENT_FINDINGS } from '../core/pipeline-record';
import { KIND, PACKAGE } from '../core/search-attributes';
import type { LintSummary } from '../activities/batches';
import type { PrecheckFinding } from '../core/prechecks';
import type { StepProgress } from '../core/step-progress';
import { describeRetry } from '../core/step-retries';
import { Visibility } from './visibility';

const RUNNING_STAGES: PipelineStage[] = ['starting', 'applying', 'qa', 'checking'];

export class StatusBoard {
  private readonly state: PipelineStatus;
  private readonly visibility = new Visibility();
  /** The fleet being rolled out, for the fleetTargets query: its state (shared, not copied) and the targets running. */
  private fleet?: { environment: string; state: FleetState; running: readonly string[] };

  /** A new pipeline, or the next run of one that continued as new, from the status it carried. */
  constructor(input: PipelineInput) {
    const carried = input.resume?.status;
    this.state = carried
      ? { ...carried, run: carried.run + 1 }
      : {
          version: STATUS_VERSION,
          kind: 'pdm',
          stage: 'starting',
          environments: input.environments ?? [],
          requestedBy: input.requestedBy,
          packageVersion: input.packageVersion,
          decisions: [],
          blocks: [],
          results: [],
          run: 1,
        };
    upsertSearchAttributes([
      { key: KIND, value: 'pdm' },
      ...(input.packageVersion ? [{ key: PACKAGE, value: input.packageVersion }] : []),
    ]);
    this.publish(carried ? `continuing the pipeline (run ${this.state.run})` : 'starting the pipeline');
  }

  /** The decision desk's record becomes the status's; a new pipeline starts a result per environment. */
  begin(environments: string[], decisions: DecisionRecord[]): void {
    decisions.push(...this.state.decisions.filter((decision) => !decisions.includes(decision)));
    this.state.decisions = decisions;
    if (this.state.results.length > 0) return;
    this.state.environments = environments;
    this.state.results = environments.map(emptyResult);
  }

  /** Says that this run hands over to the next, which goes on with `where` (an environment or one of its databases). */
  handOver(where: string): void {
    this.publish(`run ${this.state.run} hands over to run ${this.state.run + 1}, which goes on with ${where}`);
  }

  /** What the next run starts from: this status, its refusals trimmed to the recent ones. */
  carry(): PipelineStatus {
    const { decisions, dropped } = compactDecisions(this.state.decisions);
    return { ...this.snapshot(), decisions, refusalsDropped: (this.state.refusalsDropped ?? 0) + dropped };
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

  /** A batch starts at its first migration, `index` of `total` counting this environment's migrations in every run. */
  applying(environment: string, batch: { version: string; name: string; fileName: string }[], index: number, total: number): void {
    const [first] = batch;
    const last = batch[batch.length - 1];
    this.state.stage = 'applying';
    this.state.environment = environment;
    this.state.waitingFor = undefined;
    this.state.retry = undefined;
    this.state.migration = { index: index + 1, total, version: first.version, name: first.name, ...(batch.length > 1 ? { batch: { count: batch.length, lastVersion: last.version } } : {}) };
    const files = batch.length > 1 ? `${first.fileName} … ${last.fileName} (up to ${batch.length})` : first.fileName;
    this.publish(`applying ${files} (${index + 1} of ${total}) on ${environment}`);
  }

  /** Migrations this database (address) has had an outcome for, in every run. */
  handled(target: string): number {
    return Object.values(this.part(target).counts).reduce((sum, count) => sum + count, 0);
  }

  /** The running migration waits for a blocking session, or a try failed and will be tried again. */
  stepProgress({ step, waitingFor, retry }: StepProgress): void {
    const migration = this.state.migration;
    const inBatch = migration && step >= migration.version && step <= (migration.batch?.lastVersion ?? migration.version);
    if (this.state.stage !== 'applying' || !inBatch) return;
    this.state.retry = retry;
    this.state.waitingFor = retry ? describeRetry(retry) : waitingFor;
    this.publish(this.state.waitingFor ? `${step} ${this.state.waitingFor}` : `applying ${step}`);
  }

  recordMigration(target: string, outcome: MigrationOutcome): void {
    this.state.retry = undefined;
    const part = this.part(target);
    addOutcome(part, outcome);
    // An environment of several databases counts them all; the recent outcomes are per database.
    const total = this.result(parseTargetAddress(target).environment);
    if (part !== total) total.counts[outcome.outcome] = (total.counts[outcome.outcome] ?? 0) + 1;
  }

  recordQa(environment: string, qa: QaResult): void {
    this.result(environment).qa = qa;
  }

  /** The plan's lint, once per database and run: counts by rule and the last findings. */
  recordLint(target: string, lint: LintSummary): void {
    const result = this.part(target);
    result.lint = lint.recent;
    result.lintCount = lint.count;
    result.lintByRule = lint.byRule;
  }

  /** What the prechecks of `checked` files found: a file checked again replaces what its earlier check found. */
  recordPrechecks(target: string, checked: string[], findings: PrecheckFinding[]): void {
    const result = this.part(target);
    const files = new Set([...checked, ...findings.map((finding) => finding.source.split(':')[0])]);
    result.prechecks = keepRecent([...(result.prechecks ?? []).filter((finding) => !files.has(finding.source.split(':')[0])), ...findings], RECENT_FINDINGS);
  }

  recordCompatibility(target: string, compatibility: CompatibilityResult): void {
    this.part(target).compatibility = compatibility;
  }

  recordDrift(target: string, differences: string[]): void {
    this.part(target).drift = differences;
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
    return this.result(environment).counts.applied;
  }

  /** Shows the block and the exact actions it accepts (`options`: e.g. a fleet's `--target NAME|all-blocked `). */
  block(environment: string, message: string, actions: readonly ResolveAction[], options = ''): void {
    const on = this.state.migration ? ` on ${this.state.migration.version}` : '';
    this.state.lastError = message;
    this.state.blocks.push({ at: new Date().toISOString(), environment, version: this.state.migration?.version, message });
    this.show('blocked', environment, `blocked${on}: ${message} — run \`dbchange resolve ${workflowInfo().workflowId} --as USER ${options}--action ${actions.join('|')}\``);
  }

  /** A fleet rollout's waves as they stand; shown as `applying` while targets run or wait to. */
  fleetProgress(environment: string, state: FleetState, running: readonly string[]): void {
    this.fleet = { environment, state, running };
    const fleet = fleetStatus(state, running.length);
    this.result(environment).fleet = fleet;
    if (this.state.stage === 'blocked' && running.length === 0) return;
    const wave = fleet.waves[fleet.wave - 1];
    const where = wave ? `wave ${wave.wave} of ${fleet.waves.length}: ${wave.done} of ${wave.size} done, ${wave.running} running${wave.blocked > 0 ? `, ${wave.blocked} blocked` : ''}` : 'no targets';
    this.state.stage = 'applying';
    this.state.environment = environment;
    this.state.migration = undefined;
    this.state.waitingFor = where;
    this.publish(`rolling out to ${environment}: ${where}`);
  }

  /** Each target of the fleet being rolled out with its state, worked out only when asked. */
  fleetGrid(): FleetGrid | undefined {
    return this.fleet && fleetGrid(this.fleet.environment, this.fleet.state, this.fleet.running);
  }

  /** What one fleet target's rollout did, added to its environment's counts. */
  recordTargetCounts(environment: string, counts: OutcomeCounts): void {
    const total = this.result(environment).counts;
    for (const [kind, count] of Object.entries(counts) as [keyof OutcomeCounts, number][]) total[kind] = (total[kind] ?? 0) + count;
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

  /** The record of one database: the environment's own when it has one database, else its entry in `databases`. */
  private part(target: string): TargetResult {
    const { environment, database } = parseTargetAddress(target);
    const result = this.result(environment);
    if (database === undefined) return result;
    result.databases ??= [];
    let part = result.databases.find((item) => item.database === database);
    if (!part) {
      part = { database, migrations: [], counts: emptyCounts() };
      result.databases.push(part);
    }
    return part;
  }

  private result(environment: string): EnvironmentResult {
    let result = this.state.results.find((item) => item.environment === environment);
    if (!result) {
      result = emptyResult(environment);
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
