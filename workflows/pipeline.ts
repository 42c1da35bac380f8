// postDeployMigrationPipeline: per environment, checks → pending migrations → QA → approval before the next.
// A long pipeline stays within Temporal's history limits by continuing as new: the run that fills up hands its
// status and its place (the environment being applied) to a fresh run, which lists what is still pending there.
// One workflow with bounded runs, rather than a child per environment, because an environment alone can hold
// thousands of migrations; the carried status keeps counts, recent outcomes, every block and every decision.
import { allHandlersFinished, ApplicationFailure, condition, continueAsNew, ContinueAsNew, proxyActivities, setHandler } from '@temporalio/workflow';
import type { DbChangeActivities, PendingMigration, PipelinePlan } from '../activities';
import { describeIncompatible } from '../core/compatibility';
import type { MigrationOutcome, PipelineInput, PipelineResume, PipelineStatus } from '../core/pipeline';
import { DEFAULT_OUT_OF_ORDER_POLICY, describeOutOfOrder, describeRefusedOutOfOrder, outOfOrderFinding, type OutOfOrderFinding, type OutOfOrderPolicy } from '../core/out-of-order';
import { applyPlan, runIsFull } from './apply-plan';
import { BackfillWakeups } from './backfill-wait';
import { rollOutFleet } from './fleet-rollout';
import { DecisionDesk } from './decision-desk';
import { decisionSigning, withSigning } from './decision-signing';
import { fleetTargets, status, stepProgress } from './messages';
import { recordApprovalWait } from './metrics';
import { announce, block, CHECK_ACTIONS, MIGRATION_ACTIONS, resolvable, type PipelineRun } from './pipeline-desk';
import { waitForProductionChecks } from './production-gates';
import { StatusBoard } from './status-board';

const NON_RETRYABLE_ERRORS = ['ConfigError', 'MigrationFileError'];
const { markMigrationComplete } = proxyActivities<DbChangeActivities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', maximumInterval: '30s', nonRetryableErrorTypes: NON_RETRYABLE_ERRORS },
});
const { planPipeline, listPendingMigrations, lookAtPending, approvalDigest } = proxyActivities<DbChangeActivities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', maximumInterval: '30s', nonRetryableErrorTypes: NON_RETRYABLE_ERRORS },
});
const { checkCompatibility, compareRegularMigrations } = proxyActivities<DbChangeActivities>({
  // Each query is bounded by gates.precheckTimeout; the heartbeat notices a worker that went away.
  startToCloseTimeout: '30m',
  heartbeatTimeout: '10s',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE_ERRORS },
});
const { runQaGate } = proxyActivities<DbChangeActivities>({
  startToCloseTimeout: '6h',
  heartbeatTimeout: '30s',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_ERRORS },
});

export async function postDeployMigrationPipeline(input: PipelineInput): Promise<PipelineStatus> {
  checkInput(input);
  const board = new StatusBoard(input);
  setHandler(status, () => board.snapshot());
  setHandler(stepProgress, (progress) => board.stepProgress(progress));
  setHandler(fleetTargets, () => board.fleetGrid());
  try {
    return await runPipeline(input, board);
  } catch (error) {
    if (error instanceof ContinueAsNew) throw error;
    // Whatever ends the pipeline early, its status must say so rather than freeze mid-stage.
    if (!board.isFinished()) board.finish('failed', `failed: ${error instanceof Error ? error.message : String(error)}`);
    throw error;
  }
}

async function runPipeline(input: PipelineInput, board: StatusBoard): Promise<PipelineStatus> {
  const plan = await planPipeline(input.environments);
  const desk = new DecisionDesk(plan.approvers, input.requestedBy, undefined, decisionSigning(plan.signatures));
  desk.install();
  if (plan.signatures) setHandler(status, () => withSigning(board.snapshot(), desk.signingNow()));
  board.begin(plan.environments.map((environment) => environment.name), desk.decisions);
  const wakeups = new BackfillWakeups();
  wakeups.install();
  const run: PipelineRun = { board, desk, backfills: { wakeups, recheckMs: plan.recheckIntervalMs } };
  const outOfOrder = plan.outOfOrder ?? DEFAULT_OUT_OF_ORDER_POLICY;
  const resumeAt = input.resume ? plan.environments.findIndex((environment) => environment.name === input.resume!.environment) : 0;
  if (resumeAt < 0) {
    throw ApplicationFailure.create({ type: 'ConfigError', nonRetryable: true, message: `the pipeline was applying ${input.resume!.environment}, which dbchange.yaml no longer lists; put it back, or abort this pipeline` });
  }
  if (!input.resume && (await nothingPendingAnywhere(run, plan, outOfOrder, input.requestedBy))) return board.snapshot();

  for (const [index, environment] of plan.environments.entries()) {
    if (index < resumeAt) continue;
    const targets = targetsOf(environment);
    // A run that continued as new mid-environment resumes applying: an earlier run passed this environment's gates.
    const resuming = input.resume?.applying === true && index === resumeAt;
    // Each database's pending files as a signed approval named them: they are checked again before they run.
    let approved = resuming ? input.resume!.approved : undefined;
    if (!resuming) {
      const previous = plan.environments[index - 1];
      if (previous) await passDriftCheck(run, plan.drift, previous.name, environment.name);
      if (environment.approval) approved = await passApprovalGate(run, environment.name, environment.approval, plan.signatures !== undefined);
      await waitForProductionChecks(environment.name, plan.recheckIntervalMs, (why) => board.show('waiting-checks', environment.name, why));
    }
    if (environment.fleet) {
      const rollout = await rollOutFleet(run, environment.name, environment.fleet, resuming ? input.resume!.fleet : undefined, approved?.[environment.name]);
      if (rollout.handOver) return handOver(input, board, { environment: environment.name, applying: true, fleet: rollout.handOver });
    }
    for (const target of targets.slice(resuming ? resumeTargetIndex(input.resume!, targets) : 0)) {
      // Listed again here, not taken from the first look: hours and an approval may have passed since.
      const pending = await listPendingInOrder(run, outOfOrder, target, approved?.[target]);
      // Checked once, before anything of it ran: a run that continues as new lists what is left of it.
      if (approved) delete approved[target];
      if ((await applyPlan(run, target, pending)) === 'hand-over') return handOver(input, board, { environment: environment.name, applying: true, target, ...(approved ? { approved } : {}) });
    }
    if (plan.compatibilityGate) for (const target of targets) await passCompatibilityGate(run, target);
    if (environment.qa) await passQaGate(run, environment.name);
    board.environmentDone(environment.name);
    const next = plan.environments[index + 1];
    await announce('environment-done', `${board.title()}: ${environment.name} done (${board.countApplied(environment.name)} applied)${next ? `; next: ${next.name}` : ''}`, environment.name);
    if (next && runIsFull()) return handOver(input, board, { environment: next.name, applying: false });
  }

  board.finish('complete', `complete on ${board.environmentList()}`);
  await announce('finished', `${board.title()} complete: ${board.environmentList()}`);
  return board.snapshot();
}

/**
 * The first look at every environment, before anything runs: announces the start (naming out-of-order versions) and
 * finishes the pipeline at once when nothing is pending anywhere.
 */
async function nothingPendingAnywhere(run: PipelineRun, plan: PipelinePlan, outOfOrder: OutOfOrderPolicy, requestedBy: string): Promise<boolean> {
  const { board } = run;
  const firstLook: number[] = [];
  const late: OutOfOrderFinding[] = [];
  // A fleet's targets are listed when its rollout starts: looking at thousands of them here would cost as much.
  if (plan.environments.some((environment) => environment.fleet)) firstLook.push(1);
  for (const target of plan.environments.flatMap(targetsOf)) {
    const look = await resolvable(run, target, CHECK_ACTIONS, () => lookAtPending(target));
    firstLook.push(look?.count ?? 0);
    board.recordOutOfOrder(outOfOrder, target, look?.outOfOrder);
    if (look?.outOfOrder) late.push(look.outOfOrder);
  }
  // Announced after the first look, so the release manager hears of out-of-order versions before anything runs.
  const lateNote = late.length > 0 && outOfOrder !== 'allow' ? `; out of order (${outOfOrder}): ${describeOutOfOrder(late)}` : '';
  await announce('started', `${board.title()} started by ${requestedBy}${lateNote}`);
  if (firstLook.some((count) => count > 0)) return false;
  board.finish('nothing-pending', 'nothing pending on any environment: nothing to do');
  await announce('finished', `${board.title()}: nothing pending on ${board.environmentList()}`);
  return true;
}

/** This run's history is full: the next run goes on where `place` says (applying a database, or from an environment's gates). */
async function handOver(input: PipelineInput, board: StatusBoard, place: Omit<PipelineResume, 'status'>): Promise<never> {
  board.handOver(place.target ?? place.environment);
  // Every approval or resolution that arrived is recorded before the status is carried over.
  await condition(allHandlersFinished);
  return continueAsNew<typeof postDeployMigrationPipeline>({ ...input, resume: { ...place, status: board.carry() } });
}

/** The environment's databases by address; plans made before environments had several name the environment. */
function targetsOf(environment: PipelinePlan['environments'][number]): string[] {
  return environment.targets ?? [environment.name];
}

/** Where in `targets` a run that continued as new goes on applying. */
function resumeTargetIndex(resume: PipelineResume, targets: string[]): number {
  if (resume.target === undefined) return 0;
  const at = targets.indexOf(resume.target);
  if (at >= 0) return at;
  throw ApplicationFailure.create({ type: 'ConfigError', nonRetryable: true, message: `the pipeline was applying ${resume.target}, which dbchange.yaml no longer lists; put it back, or abort this pipeline` });
}

/** Returns, when decisions may be signed, each database's digest of the pending files the approval permitted. */
async function passApprovalGate(run: PipelineRun, environment: string, approval: NonNullable<PipelinePlan['environments'][number]['approval']>, signing: boolean): Promise<Record<string, string> | undefined> {
  const { board, desk } = run;
  // A signed approval names exactly what runs after the gate: the pending files of the environment's databases.
  const permitted = signing ? await resolvable(run, environment, CHECK_ACTIONS, () => approvalDigest(environment)) : undefined;
  const digest = permitted?.digest;
  board.show('waiting-approval', environment, `waiting for approval by ${approval.roles.join(' or ')} before ${environment}`);
  const reachedGate = Date.now();
  const outcome = await desk.waitForApproval(environment, approval.roles, approval.timeoutMs, digest);
  const rejected = !outcome.approved && outcome.by !== undefined;
  recordApprovalWait(environment, Date.now() - reachedGate, outcome.approved ? 'approved' : rejected ? 'rejected' : 'timed-out');
  if (!outcome.approved) {
    board.finish(rejected ? 'rejected' : 'failed', `${environment} not approved: ${outcome.reason}`);
    await announce('finished', `${board.title()} stopped before ${environment}: ${outcome.reason}`);
    throw ApplicationFailure.create({ type: rejected ? 'PipelineRejected' : 'ApprovalTimedOut', nonRetryable: true, message: outcome.reason, details: [board.snapshot()] });
  }
  return permitted?.targets;
}

/** Promoting assumes the next environment runs the same application schema: its regular migrations must match the previous one's. */
async function passDriftCheck(run: PipelineRun, policy: PipelinePlan['drift'], previous: string, environment: string) {
  const { board } = run;
  for (;;) {
    board.show('checking', environment, `comparing the regular migrations of ${previous} and ${environment}`);
    const differences = await resolvable(run, environment, CHECK_ACTIONS, () => compareRegularMigrations({ previous, environment }));
    if (!differences) return;
    board.recordDrift(environment, differences);
    if (differences.length === 0 || policy === 'warn') return;
    const message = `drift: ${differences.join('; ')}; run the regular migrations on both (or set gates.drift: warn), then retry`;
    const resolution = await block(run, environment, message, ['retry', 'mark-complete', 'abort']);
    if (resolution.action === 'mark-complete') return;
  }
}

/**
 * Lists what runs next on `environment` (edited files and promotion mismatches block there). Under
 * migrations.outOfOrder: refuse, out-of-order versions block before any of it runs: retry lists again (after a
 * rename), mark-complete records them as done without running them, abort ends the pipeline.
 */
async function listPendingInOrder(run: PipelineRun, policy: OutOfOrderPolicy, environment: string, approvedDigest?: string): Promise<PendingMigration[]> {
  const { board } = run;
  for (;;) {
    const pending = (await resolvable(run, environment, CHECK_ACTIONS, () => listPendingMigrations(environment, approvedDigest))) ?? [];
    const finding = outOfOrderFinding(environment, pending);
    board.recordOutOfOrder(policy, environment, finding);
    if (policy !== 'refuse' || !finding) return pending;
    const resolution = await block(run, environment, describeRefusedOutOfOrder([finding], 'pipeline'), MIGRATION_ACTIONS);
    if (resolution.action !== 'mark-complete') continue;
    for (const migration of pending.filter((item) => item.outOfOrder)) {
      const ref = { environment, version: migration.version, checksum: migration.checksum, decidedBy: resolution.user };
      const outcome = await resolvable(run, environment, CHECK_ACTIONS, () =>
        markMigrationComplete.executeWithOptions({ summary: `mark ${migration.fileName} complete on ${environment} (out of order)` }, [ref]),
      );
      board.recordMigration(environment, outcome ?? skipped(migration));
    }
    return pending.filter((item) => !item.outOfOrder);
  }
}

/** After an environment's migrations: every query of the running application must still plan there (seed 002). */
async function passCompatibilityGate(run: PipelineRun, environment: string) {
  const { board } = run;
  for (;;) {
    board.show('checking', environment, `checking the running application's queries against ${environment}`);
    const result = await resolvable(run, environment, CHECK_ACTIONS, () => checkCompatibility(environment));
    if (!result) return;
    board.recordCompatibility(environment, result);
    if (result.failures.length === 0) return;
    const message = `compatibility gate on ${environment}: ${result.failures.length} of ${result.checked} application queries no longer plan: ${describeIncompatible(result)}`;
    const resolution = await block(run, environment, message, ['retry', 'mark-complete', 'abort']);
    if (resolution.action === 'mark-complete') return;
  }
}

async function passQaGate(run: PipelineRun, environment: string) {
  const { board } = run;
  for (;;) {
    board.show('qa', environment, `running QA against ${environment}`);
    const result = await runQaGate(environment);
    board.recordQa(environment, result);
    if (result.passed) return;
    const reason = result.timedOut ? 'timed out' : `exited ${result.exitCode}`;
    const action = await block(run, environment, `QA on ${environment} ${reason}: ${lastLine(result.outputTail)}`, ['retry', 'mark-complete', 'abort']);
    if (action.action === 'mark-complete') return;
  }
}

function lastLine(text: string): string {
  return text.trim().split('\n').slice(-1)[0]?.slice(0, 300) ?? '';
}

function skipped(migration: PendingMigration): MigrationOutcome {
  return { version: migration.version, name: migration.name, outcome: 'marked-complete', durationMs: 0, attempts: 0 };
}

function checkInput(input: PipelineInput): void {
  const problems: string[] = [];
  if (!input || typeof input !== 'object') problems.push('input must be a JSON object {"requestedBy": "...", "environments": [...]}');
  else {
    if (typeof input.requestedBy !== 'string' || input.requestedBy === '') problems.push('"requestedBy" is required');
    if (input.environments !== undefined && !(Array.isArray(input.environments) && input.environments.every((name) => typeof name === 'string'))) {
      problems.push('"environments" must be a list of environment names');
    }
    if (input.packageVersion !== undefined && typeof input.packageVersion !== 'string') problems.push('"packageVersion" must be a string');
    const resume = input.resume as Partial<PipelineInput['resume']> | undefined;
    const badTarget = resume?.target !== undefined && typeof resume.target !== 'string';
    if (resume !== undefined && (typeof resume?.environment !== 'string' || typeof resume?.applying !== 'boolean' || typeof resume?.status !== 'object' || badTarget)) {
      problems.push('"resume" is set by the pipeline itself when it continues as new; leave it out');
    }
  }
  if (problems.length > 0) throw ApplicationFailure.create({ type: 'InvalidInput', nonRetryable: true, message: problems.join('; ') });
}
