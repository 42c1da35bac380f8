// postDeployMigrationPipeline: per environment, checks → pending migrations → QA → approval before the next.
import { ActivityCancellationType, ActivityFailure, ApplicationFailure, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { DbChangeActivities, PendingMigration, PipelinePlan } from '../activities';
import { describeIncompatible } from '../core/compatibility';
import type { MigrationOutcome, PipelineInput, PipelineStatus } from '../core/pipeline';
import { describeBlocking } from '../core/prechecks';
import type { Resolution, ResolveAction } from '../core/decisions';
import { DEFAULT_OUT_OF_ORDER_POLICY, describeOutOfOrder, describeRefusedOutOfOrder, outOfOrderFinding, type OutOfOrderFinding, type OutOfOrderPolicy } from '../core/out-of-order';
import { DecisionDesk } from './decision-desk';
import { status, stepProgress } from './messages';
import { countPipelineBlocked, recordApprovalWait } from './metrics';
import { waitForProductionChecks } from './production-gates';
import { describeStepFailure, retryStatementTimeouts, runStoppable, transientRetryPolicy } from './running-step';
import { StatusBoard } from './status-board';

const NON_RETRYABLE_ERRORS = ['ConfigError', 'MigrationFileError'];
const { applyMigration, markMigrationComplete } = proxyActivities<DbChangeActivities>({
  startToCloseTimeout: '24h',
  heartbeatTimeout: '10s',
  // A person's stop waits until the migration's SQL was cancelled and rolled back.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: transientRetryPolicy(NON_RETRYABLE_ERRORS),
});
const { planPipeline, listPendingMigrations } = proxyActivities<DbChangeActivities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', maximumInterval: '30s', nonRetryableErrorTypes: NON_RETRYABLE_ERRORS },
});
const { precheckMigration, checkCompatibility, compareRegularMigrations } = proxyActivities<DbChangeActivities>({
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
const { notify } = proxyActivities<DbChangeActivities>({ startToCloseTimeout: '30s', retry: { maximumAttempts: 3 } });

const MIGRATION_ACTIONS: readonly ResolveAction[] = ['retry', 'mark-complete', 'abort'];
const CHECK_ACTIONS: readonly ResolveAction[] = ['retry', 'abort'];

export async function postDeployMigrationPipeline(input: PipelineInput): Promise<PipelineStatus> {
  checkInput(input);
  const board = new StatusBoard(input);
  setHandler(status, () => board.snapshot());
  setHandler(stepProgress, (progress) => board.stepProgress(progress));
  try {
    return await runPipeline(input, board);
  } catch (error) {
    // Whatever ends the pipeline early, its status must say so rather than freeze mid-stage.
    if (!board.isFinished()) board.finish('failed', `failed: ${error instanceof Error ? error.message : String(error)}`);
    throw error;
  }
}

async function runPipeline(input: PipelineInput, board: StatusBoard): Promise<PipelineStatus> {
  const plan = await planPipeline(input.environments);
  const desk = new DecisionDesk(plan.approvers, input.requestedBy);
  desk.install();
  board.begin(plan.environments.map((environment) => environment.name), desk.decisions);
  const outOfOrder = plan.outOfOrder ?? DEFAULT_OUT_OF_ORDER_POLICY;

  const firstLook: (PendingMigration[] | undefined)[] = [];
  const late: OutOfOrderFinding[] = [];
  for (const environment of plan.environments) {
    const pending = await resolvable(board, desk, environment.name, CHECK_ACTIONS, () => listPendingMigrations(environment.name));
    firstLook.push(pending);
    const finding = outOfOrderFinding(environment.name, pending ?? []);
    board.recordOutOfOrder(outOfOrder, environment.name, finding);
    if (finding) late.push(finding);
  }
  // Announced after the first look, so the release manager hears of out-of-order versions before anything runs.
  const lateNote = late.length > 0 && outOfOrder !== 'allow' ? `; out of order (${outOfOrder}): ${describeOutOfOrder(late)}` : '';
  await announce('started', `${board.title()} started by ${input.requestedBy}${lateNote}`);
  if (firstLook.every((pending) => !pending?.length)) {
    board.finish('nothing-pending', 'nothing pending on any environment: nothing to do');
    await announce('finished', `${board.title()}: nothing pending on ${board.environmentList()}`);
    return board.snapshot();
  }

  for (const [index, environment] of plan.environments.entries()) {
    const previous = plan.environments[index - 1];
    if (previous) await passDriftCheck(board, desk, plan.drift, previous.name, environment.name);
    if (environment.approval) await passApprovalGate(board, desk, environment.name, environment.approval);
    await waitForProductionChecks(environment.name, plan.recheckIntervalMs, (why) => board.show('waiting-checks', environment.name, why));
    // Listed again here, not taken from the first look: hours and an approval may have passed since.
    const pending = await listPendingInOrder(board, desk, outOfOrder, environment.name);
    await applyAll(board, desk, environment.name, pending);
    if (plan.compatibilityGate) await passCompatibilityGate(board, desk, environment.name);
    if (environment.qa) await passQaGate(board, desk, environment.name);
    board.environmentDone(environment.name);
    const next = plan.environments[index + 1];
    await announce('environment-done', `${board.title()}: ${environment.name} done (${board.countApplied(environment.name)} applied)${next ? `; next: ${next.name}` : ''}`, environment.name);
  }

  board.finish('complete', `complete on ${board.environmentList()}`);
  await announce('finished', `${board.title()} complete: ${board.environmentList()}`);
  return board.snapshot();
}

async function announce(event: 'started' | 'environment-done' | 'blocked' | 'finished', text: string, environment?: string) {
  // A lost notification must not stop a database change.
  await notify({ event, text, workflowId: workflowInfo().workflowId, environment }).catch(() => undefined);
}

async function passApprovalGate(board: StatusBoard, desk: DecisionDesk, environment: string, approval: NonNullable<PipelinePlan['environments'][number]['approval']>) {
  board.show('waiting-approval', environment, `waiting for approval by ${approval.roles.join(' or ')} before ${environment}`);
  const reachedGate = Date.now();
  const outcome = await desk.waitForApproval(environment, approval.roles, approval.timeoutMs);
  const rejected = !outcome.approved && outcome.by !== undefined;
  recordApprovalWait(environment, Date.now() - reachedGate, outcome.approved ? 'approved' : rejected ? 'rejected' : 'timed-out');
  if (!outcome.approved) {
    board.finish(rejected ? 'rejected' : 'failed', `${environment} not approved: ${outcome.reason}`);
    await announce('finished', `${board.title()} stopped before ${environment}: ${outcome.reason}`);
    throw ApplicationFailure.create({ type: rejected ? 'PipelineRejected' : 'ApprovalTimedOut', nonRetryable: true, message: outcome.reason, details: [board.snapshot()] });
  }
}

async function applyAll(board: StatusBoard, desk: DecisionDesk, environment: string, pending: PendingMigration[]) {
  for (const [index, migration] of pending.entries()) {
    board.applying(environment, migration, index, pending.length);
    const ref = { environment, version: migration.version, checksum: migration.checksum };
    const markComplete = (user: string) => markMigrationComplete.executeWithOptions({ summary: `mark ${migration.fileName} complete on ${environment}` }, [{ ...ref, decidedBy: user }]);
    const markedBy = await passPrechecks(board, desk, environment, migration, ref);
    if (markedBy !== undefined) {
      board.recordMigration(environment, (await resolvable(board, desk, environment, CHECK_ACTIONS, () => markComplete(markedBy))) ?? skipped(migration));
      continue;
    }
    const apply = () => applyMigration.executeWithOptions({ summary: `apply ${migration.fileName} on ${environment}` }, [ref]);
    const outcome = await resolvable(board, desk, environment, MIGRATION_ACTIONS, () => applyStoppably(board, desk, environment, migration, apply), markComplete);
    board.recordMigration(environment, outcome ?? skipped(migration));
  }
}

/** Applies one migration: a person may stop it while it runs, and a statement timeout is retried a bounded number of times. */
async function applyStoppably(board: StatusBoard, desk: DecisionDesk, environment: string, migration: PendingMigration, apply: () => Promise<MigrationOutcome>): Promise<MigrationOutcome> {
  const run = await runStoppable(desk, environment, () => retryStatementTimeouts((retry) => board.stepProgress({ step: migration.version, retry }), apply));
  if (!run.stopped) return run.done;
  // The stop came as it finished: what it applied stays recorded, and nothing more runs.
  if (run.done) board.recordMigration(environment, run.done);
  return endAborted(board, environment, run.stopped, `stopped ${migration.fileName} while it ran; its SQL was cancelled and rolled back`);
}

/**
 * Lint and data-aware prechecks right before a migration, so the data it meets is the data it will meet.
 * Returns undefined to apply it, or the person who chose mark-complete (done by hand) instead.
 */
async function passPrechecks(board: StatusBoard, desk: DecisionDesk, environment: string, migration: PendingMigration, ref: { environment: string; version: string; checksum: string }): Promise<string | undefined> {
  for (;;) {
    const report = await resolvable(board, desk, environment, CHECK_ACTIONS, () =>
      precheckMigration.executeWithOptions({ summary: `precheck ${migration.fileName} on ${environment}` }, [ref]),
    );
    if (!report) return undefined;
    board.recordGateReport(environment, migration.fileName, report);
    const blocking = describeBlocking(report.prechecks);
    if (!blocking) return undefined;
    const resolution = await block(board, desk, environment, `prechecks block ${migration.fileName}: ${blocking}`, MIGRATION_ACTIONS);
    if (resolution.action === 'mark-complete') return resolution.user;
  }
}

/** Promoting assumes the next environment runs the same application schema: its regular migrations must match the previous one's. */
async function passDriftCheck(board: StatusBoard, desk: DecisionDesk, policy: PipelinePlan['drift'], previous: string, environment: string) {
  for (;;) {
    board.show('checking', environment, `comparing the regular migrations of ${previous} and ${environment}`);
    const differences = await resolvable(board, desk, environment, CHECK_ACTIONS, () => compareRegularMigrations({ previous, environment }));
    if (!differences) return;
    board.recordDrift(environment, differences);
    if (differences.length === 0 || policy === 'warn') return;
    const message = `drift: ${differences.join('; ')}; run the regular migrations on both (or set gates.drift: warn), then retry`;
    const resolution = await block(board, desk, environment, message, ['retry', 'mark-complete', 'abort']);
    if (resolution.action === 'mark-complete') return;
  }
}

/**
 * Lists what runs next on `environment` (edited files and promotion mismatches block there). Under
 * migrations.outOfOrder: refuse, out-of-order versions block before any of it runs: retry lists again (after a
 * rename), mark-complete records them as done without running them, abort ends the pipeline.
 */
async function listPendingInOrder(board: StatusBoard, desk: DecisionDesk, policy: OutOfOrderPolicy, environment: string): Promise<PendingMigration[]> {
  for (;;) {
    const pending = (await resolvable(board, desk, environment, CHECK_ACTIONS, () => listPendingMigrations(environment))) ?? [];
    const finding = outOfOrderFinding(environment, pending);
    board.recordOutOfOrder(policy, environment, finding);
    if (policy !== 'refuse' || !finding) return pending;
    const resolution = await block(board, desk, environment, describeRefusedOutOfOrder([finding], 'pipeline'), MIGRATION_ACTIONS);
    if (resolution.action !== 'mark-complete') continue;
    for (const migration of pending.filter((item) => item.outOfOrder)) {
      const ref = { environment, version: migration.version, checksum: migration.checksum, decidedBy: resolution.user };
      const outcome = await resolvable(board, desk, environment, CHECK_ACTIONS, () =>
        markMigrationComplete.executeWithOptions({ summary: `mark ${migration.fileName} complete on ${environment} (out of order)` }, [ref]),
      );
      board.recordMigration(environment, outcome ?? skipped(migration));
    }
    return pending.filter((item) => !item.outOfOrder);
  }
}

/** After an environment's migrations: every query of the running application must still plan there (seed 002). */
async function passCompatibilityGate(board: StatusBoard, desk: DecisionDesk, environment: string) {
  for (;;) {
    board.show('checking', environment, `checking the running application's queries against ${environment}`);
    const result = await resolvable(board, desk, environment, CHECK_ACTIONS, () => checkCompatibility(environment));
    if (!result) return;
    board.recordCompatibility(environment, result);
    if (result.failures.length === 0) return;
    const message = `compatibility gate on ${environment}: ${result.failures.length} of ${result.checked} application queries no longer plan: ${describeIncompatible(result)}`;
    const resolution = await block(board, desk, environment, message, ['retry', 'mark-complete', 'abort']);
    if (resolution.action === 'mark-complete') return;
  }
}

async function passQaGate(board: StatusBoard, desk: DecisionDesk, environment: string) {
  for (;;) {
    board.show('qa', environment, `running QA against ${environment}`);
    const result = await runQaGate(environment);
    board.recordQa(environment, result);
    if (result.passed) return;
    const reason = result.timedOut ? 'timed out' : `exited ${result.exitCode}`;
    const action = await block(board, desk, environment, `QA on ${environment} ${reason}: ${lastLine(result.outputTail)}`, ['retry', 'mark-complete', 'abort']);
    if (action.action === 'mark-complete') return;
  }
}

/**
 * Runs a step; a non-retryable failure blocks the pipeline until a person resolves it:
 * retry runs the step again, mark-complete runs `markComplete` instead, abort ends the pipeline.
 */
async function resolvable<T>(
  board: StatusBoard,
  desk: DecisionDesk,
  environment: string,
  actions: readonly ResolveAction[],
  step: () => Promise<T>,
  markComplete?: (user: string) => Promise<T>,
): Promise<T | undefined> {
  for (;;) {
    try {
      return await step();
    } catch (error) {
      if (!(error instanceof ActivityFailure)) throw error;
      const resolution = await block(board, desk, environment, describeStepFailure(error), actions);
      if (resolution.action === 'mark-complete') return markComplete ? await markComplete(resolution.user) : undefined;
    }
  }
}

async function block(board: StatusBoard, desk: DecisionDesk, environment: string, message: string, actions: readonly ResolveAction[]) {
  board.block(environment, message, actions);
  countPipelineBlocked(environment);
  // Listen before notifying: a person who reacts to the notification at once must find the pipeline waiting.
  const decided = desk.waitForResolution(environment, actions);
  await announce('blocked', `${board.title()} is blocked on ${environment}: ${message}`, environment);
  const resolution = await decided;
  if (resolution.action === 'abort') return endAborted(board, environment, resolution, message);
  board.resume(environment, `${resolution.action} by ${resolution.user} on ${environment}`);
  return resolution;
}

/** A person's abort ends the pipeline: nothing more is applied, and the status says who and why. */
async function endAborted(board: StatusBoard, environment: string, resolution: Resolution, message: string): Promise<never> {
  const why = resolution.comment ? ` ("${resolution.comment}")` : '';
  board.finish('aborted', `aborted by ${resolution.user}${why} on ${environment}: ${message}`);
  await announce('finished', `${board.title()} aborted by ${resolution.user} on ${environment}`);
  throw ApplicationFailure.create({ type: 'PipelineAborted', nonRetryable: true, message: `aborted by ${resolution.user}: ${message}`, details: [board.snapshot()] });
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
  }
  if (problems.length > 0) throw ApplicationFailure.create({ type: 'InvalidInput', nonRetryable: true, message: problems.join('; ') });
}
