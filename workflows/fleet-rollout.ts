// Rolling post-deploy migrations out to a fleet (cells, tenants): its targets are listed once, then walked in waves,
// `concurrency` at a time, one activity per target. A failed target blocks only itself; a wave ends when all its
// targets are done or decided, and halts early once `haltAfterFailures` of them failed. The state is compact and
// carried when the pipeline continues as new, so a rollout of thousands of targets stays within history limits.
import { ActivityCancellationType, ActivityFailure, ApplicationFailure, CancellationScope, isCancellation, proxyActivities } from '@temporalio/workflow';
import type { DbChangeActivities } from '../activities';
import type { TargetFailureDetails, TargetOutcome } from '../activities/fleet-rollout';
import { ALL_BLOCKED, type Resolution, type ResolveAction } from '../core/decisions';
import type { FleetPlan } from '../core/fleet';
import { planWaves } from '../core/waves';
import { failedInWave, hasTargetsToStart, startFleetState, takeIssue, takeNextTarget, type FleetState } from '../core/fleet-progress';
import { countFleetTarget, countPipelineBlocked, recordApprovalWait } from './metrics';
import { announce, block, CHECK_ACTIONS, endAborted, resolvable, type PipelineRun } from './pipeline-desk';
import { shortDigest } from '../core/decision-statement';
import { runIsFull } from './apply-plan';
import { describeStepFailure, transientRetryPolicy } from './running-step';

const NON_RETRYABLE_ERRORS = ['ConfigError', 'MigrationFileError'];
const { rollOutTarget } = proxyActivities<DbChangeActivities>({
  startToCloseTimeout: '24h',
  heartbeatTimeout: '10s',
  // A person's stop waits until each running target's SQL was cancelled and rolled back.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: transientRetryPolicy(NON_RETRYABLE_ERRORS),
});
const { listFleetTargets, markTargetMigrationComplete } = proxyActivities<DbChangeActivities>({
  startToCloseTimeout: '5m',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE_ERRORS },
});

const TARGET_ACTIONS: readonly ResolveAction[] = ['retry', 'mark-complete', 'abort'];

/** Rolls the fleet out; 'hand-over' with the state when this run's history is full and the next run goes on. */
export async function rollOutFleet(run: PipelineRun, environment: string, plan: FleetPlan, resumed?: FleetState, approvedDigest?: string): Promise<{ handOver?: FleetState }> {
  const state = resumed ?? (await listTargets(run, environment, plan, approvedDigest));
  const show = (running: readonly string[]) => run.board.fleetProgress(environment, state, running);
  show([]);
  while (state.wave < state.waves.length) {
    if (state.wave > state.approvedWave && plan.approvalBetweenWaves) {
      await passWaveApproval(run, environment, state, plan.approvalBetweenWaves);
      state.approvedWave = state.wave;
    }
    if ((await runWave(run, environment, plan, state, show)) === 'hand-over') return { handOver: state };
    const { start, end } = state.waves[state.wave];
    await announce('wave-done', `${run.board.title()}: ${environment} wave ${state.wave + 1} of ${state.waves.length} done (${state.done[state.wave]} of ${end - start} targets${failedInWave(state).length > 0 ? `, ${failedInWave(state).length} given up` : ''})`, environment);
    state.wave++;
    state.next = state.waves[state.wave]?.start ?? state.targets.length;
    show([]);
    if (state.wave < state.waves.length && runIsFull()) return { handOver: state };
  }
  return {};
}

/**
 * The rollout's snapshot of the fleet: a source that cannot be read, or lists bad rows, blocks before anything runs;
 * so do post-deploy files other than the ones an approval before the fleet permitted (`approvedDigest`).
 */
async function listTargets(run: PipelineRun, environment: string, plan: FleetPlan, approvedDigest?: string): Promise<FleetState> {
  run.board.show('checking', environment, `listing the targets of ${environment}`);
  for (;;) {
    const listing = await resolvable(run, environment, CHECK_ACTIONS, () => listFleetTargets(environment));
    if (!listing) continue;
    const digest = `sha256:${listing.digest}`;
    if (approvedDigest === undefined || digest === approvedDigest) return startFleetState(listing.targets, listing.digest, planWaves(listing.targets.length, plan.waves));
    await block(run, environment, `the post-deploy files changed since ${environment} was approved (approved ${shortDigest(approvedDigest)}, now ${shortDigest(digest)}): what runs must be what was approved; restore them and retry, or abort and start a new pipeline`, CHECK_ACTIONS);
  }
}

/**
 * One wave: starts targets up to `concurrency`, waits for decisions on blocked ones, ends when each is settled.
 * While targets run, `resolve --action abort` stops them all (their SQL is cancelled and rolled back) and ends the
 * pipeline.
 */
async function runWave(run: PipelineRun, environment: string, plan: FleetPlan, state: FleetState, show: (running: readonly string[]) => void): Promise<'done' | 'hand-over'> {
  const running = new Map<string, Promise<void>>();
  const scope = new CancellationScope();
  for (;;) {
    const halted = state.blocked.length + failedInWave(state).length >= plan.haltAfterFailures;
    const full = runIsFull();
    while (!halted && !full && running.size < plan.concurrency) {
      const target = takeNextTarget(state);
      if (target === undefined) break;
      running.set(target, scope.run(() => rollOut(run, environment, state, target)).finally(() => running.delete(target)));
    }
    show([...running.keys()]);
    if (running.size > 0) {
      await untilOneEndsOrStop(run, environment, scope, running);
      continue;
    }
    // Nothing runs: what is left is the state itself, so a full run can hand it over here.
    if (full && hasTargetsToStart(state) && !halted) return 'hand-over';
    if (!hasTargetsToStart(state) && state.blocked.length === 0 && failedInWave(state).length < plan.haltAfterFailures) return 'done';
    await decideTargets(run, environment, plan, state);
  }
}

/** Waits for a running target to end; a person's stop cancels every running one, waits for them, and ends the pipeline. */
async function untilOneEndsOrStop(run: PipelineRun, environment: string, scope: CancellationScope, running: Map<string, Promise<void>>): Promise<void> {
  const offer = run.desk.offerStop(environment);
  try {
    await Promise.race([...running.values(), offer.decided]);
    const stop = offer.decision();
    if (!stop) return;
    const stopped = [...running.keys()];
    scope.cancel();
    await Promise.allSettled(running.values());
    await endAborted(run.board, environment, stop, `stopped ${stopped.join(', ')} while they ran; their SQL was cancelled and rolled back`);
  } finally {
    offer.withdraw();
  }
}

/** Runs one target; a failure that needs a person blocks the target, not the wave. */
async function rollOut({ board }: PipelineRun, environment: string, state: FleetState, target: string): Promise<void> {
  const wave = state.wave;
  let outcome: TargetOutcome;
  try {
    outcome = await rollOutTarget.executeWithOptions({ summary: `migrate ${target} (${environment}, wave ${wave + 1})` }, [{ environment, target, digest: state.digest }]);
  } catch (error) {
    if (!(error instanceof ActivityFailure)) throw error;
    // Stopped by a person: the pipeline ends (untilOneEndsOrStop); the target is not blocked.
    if (isCancellation(error)) return;
    const { version, counts } = detailsOf(error);
    if (counts) board.recordTargetCounts(environment, counts);
    state.blocked.push({ target, error: describeStepFailure(error), wave, ...(version ? { version } : {}) });
    countFleetTarget(environment, 'blocked');
    return;
  }
  state.done[wave]++;
  countFleetTarget(environment, 'done');
  board.recordTargetCounts(environment, outcome.counts);
}

/**
 * Blocked targets (or a halted wave) wait for a person: `--target NAME|all-blocked` with retry, mark-complete
 * (records its failed migration as done, then runs the rest) or abort (gives the target up); abort without a
 * target ends the pipeline.
 */
async function decideTargets(run: PipelineRun, environment: string, plan: FleetPlan, state: FleetState): Promise<void> {
  const { board, desk } = run;
  const givenUp = failedInWave(state);
  const blockedText = state.blocked.slice(0, 5).map((issue) => `${issue.target}: ${issue.error}`).join('; ');
  const halt = state.blocked.length + givenUp.length >= plan.haltAfterFailures ? `; halted: ${state.blocked.length + givenUp.length} failed of haltAfterFailures ${plan.haltAfterFailures}` : '';
  const message = `wave ${state.wave + 1} of ${environment}: ${state.blocked.length} blocked${givenUp.length > 0 ? `, ${givenUp.length} given up` : ''}${halt}${blockedText ? ` (${blockedText})` : ''}`;
  board.block(environment, message, TARGET_ACTIONS, '--target NAME|all-blocked ');
  countPipelineBlocked(environment);
  const decided = desk.waitForResolution(environment, TARGET_ACTIONS, { blocked: state.blocked.map((issue) => issue.target), failed: givenUp.map((issue) => issue.target) });
  await announce('blocked', `${board.title()} is blocked on ${message}`, environment);
  const resolution = await decided;
  if (resolution.target === undefined) return endAborted(board, environment, resolution, message);
  const names = resolution.target === ALL_BLOCKED ? state.blocked.map((issue) => issue.target) : [resolution.target];
  for (const target of names) await applyDecision(environment, state, target, resolution);
  board.resume(environment, `${resolution.action} by ${resolution.user} for ${resolution.target} on ${environment}`);
}

async function applyDecision(environment: string, state: FleetState, target: string, resolution: Resolution): Promise<void> {
  const issue = takeIssue(state, target);
  if (!issue) return;
  if (resolution.action === 'abort') {
    state.failed.push(issue);
    countFleetTarget(environment, 'failed');
    return;
  }
  if (resolution.action === 'mark-complete' && issue.version) {
    try {
      await markTargetMigrationComplete({ environment, target, version: issue.version, decidedBy: resolution.user });
    } catch (error) {
      if (!(error instanceof ActivityFailure)) throw error;
      state.blocked.push({ ...issue, error: `mark-complete failed: ${describeStepFailure(error)}` });
      return;
    }
  }
  state.requeued.push(target);
}

async function passWaveApproval({ board, desk }: PipelineRun, environment: string, state: FleetState, approval: NonNullable<FleetPlan['approvalBetweenWaves']>): Promise<void> {
  const label = `${environment} wave ${state.wave + 1}`;
  board.show('waiting-approval', environment, `waiting for approval by ${approval.roles.join(' or ')} before ${label}`);
  const reachedGate = Date.now();
  // A signed approval names what every target of the wave runs: the rollout's files.
  const outcome = await desk.waitForApproval(label, approval.roles, approval.timeoutMs, `sha256:${state.digest}`);
  const rejected = !outcome.approved && outcome.by !== undefined;
  recordApprovalWait(environment, Date.now() - reachedGate, outcome.approved ? 'approved' : rejected ? 'rejected' : 'timed-out');
  if (outcome.approved) return;
  board.finish(rejected ? 'rejected' : 'failed', `${label} not approved: ${outcome.reason}`);
  await announce('finished', `${board.title()} stopped before ${label}: ${outcome.reason}`);
  throw ApplicationFailure.create({ type: rejected ? 'PipelineRejected' : 'ApprovalTimedOut', nonRetryable: true, message: outcome.reason, details: [board.snapshot()] });
}

/** The migration a target stopped on, and what it settled before, as its failure's details carry them. */
function detailsOf(error: ActivityFailure): TargetFailureDetails {
  const cause = error.cause instanceof ApplicationFailure ? error.cause : undefined;
  const details = (cause?.details ?? []) as (TargetFailureDetails | undefined)[];
  const version = details.find((item) => typeof item?.version === 'string')?.version;
  const counts = details.find((item) => typeof item?.counts === 'object')?.counts;
  return { ...(version ? { version } : {}), ...(counts ? { counts } : {}) };
}
