// changeRequest: approvals by criticality → per environment, production checks then the steps → a rollback
// window. A failed step blocks until a person says retry, rollback or abort; the rollback runs the CR's rollback
// steps on every environment it changed, newest first.
import { ActivityCancellationType, ActivityFailure, ApplicationFailure, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { ChangePlan, DbChangeActivities } from '../activities';
import { decisionSigning, withSigning } from './decision-signing';
import type { ChangeStep } from '../core/change-request';
import { shouldRun, stepSettings, type CheckResults, type Phase } from '../core/change-steps';
import { approvalWaitText, type ChangeRequestInput, type ChangeRequestStatus, type StepRecord } from '../core/change-status';
import type { Resolution, ResolveAction } from '../core/decisions';
import { describeBlocking } from '../core/prechecks';
import { formatDuration } from '../core/duration';
import { ChangeBoard } from './change-board';
import { DecisionDesk } from './decision-desk';
import { changeStatus, stepProgress } from './messages';
import { waitForProductionChecks } from './production-gates';
import { describeStepFailure, retryStatementTimeouts, runStoppable, transientRetryPolicy } from './running-step';

const { planChangeRequest } = proxyActivities<DbChangeActivities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 5 },
});
const { rehearseChange } = proxyActivities<DbChangeActivities>({
  startToCloseTimeout: '1h',
  // The rehearsal heartbeats: a worker that dies mid-rehearsal is noticed in seconds, not at the hour.
  heartbeatTimeout: '10s',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 5 },
});
const { notify } = proxyActivities<DbChangeActivities>({ startToCloseTimeout: '30s', retry: { maximumAttempts: 3 } });

/** Everything a run of the plan needs, built once the plan is known. */
interface Run {
  plan: ChangePlan;
  board: ChangeBoard;
  desk: DecisionDesk;
  steps: ReturnType<typeof stepActivities>;
  dryRun: boolean;
  /** The CR file's name, for precheck findings (file:line). */
  file: string;
}

/**
 * Lock waits retry inside the activity (lockRetry.maxWait); deadlocks, serialization failures and lost connections
 * retry in Temporal (lockRetry.maxAttempts); statement timeouts in the workflow (lockRetry.statementTimeoutRetries).
 */
function stepActivities(plan: ChangePlan) {
  const { maxWaitMs, statementTimeoutMs } = plan.settings;
  return proxyActivities<DbChangeActivities>({
    // A try may wait for locks for up to maxWait, then run its statements for up to the statement timeout.
    startToCloseTimeout: maxWaitMs + statementTimeoutMs + 60_000,
    heartbeatTimeout: '10s',
    // A person's stop waits until the step's SQL was cancelled and rolled back.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: transientRetryPolicy(),
  });
}

export async function changeRequest(input: ChangeRequestInput): Promise<ChangeRequestStatus> {
  checkInput(input);
  const plan = await planChangeRequest({ file: input.file, content: input.content, checksum: input.checksum });
  const desk = new DecisionDesk(plan.approvers, plan.changeRequest.requestedBy, plan.checksum, decisionSigning(plan.signatures));
  const board = new ChangeBoard(plan, Boolean(input.dryRun), desk.decisions);
  setHandler(changeStatus, () => (plan.signatures ? withSigning(board.snapshot(), desk.signingNow()) : board.snapshot()));
  setHandler(stepProgress, (progress) => board.stepProgress(progress));
  desk.install();
  desk.installRollback();
  const run: Run = { plan, board, desk, steps: stepActivities(plan), dryRun: Boolean(input.dryRun), file: input.file };
  try {
    return input.dryRun ? await rehearse(run) : await execute(run);
  } catch (error) {
    if (!board.isFinished()) board.finish('failed', `failed: ${error instanceof Error ? error.message : String(error)}`);
    throw error;
  }
}

async function execute(run: Run): Promise<ChangeRequestStatus> {
  const { plan, board, desk } = run;
  const cr = plan.changeRequest;
  await announce(run, 'started', `${board.title()} requested by ${cr.requestedBy}`);
  if (plan.approvals.length > 0) await passApprovals(run);

  for (const environment of cr.environments) {
    await waitForProductionChecks(environment, plan.recheckIntervalMs, (why) => board.show('waiting-checks', environment, why));
    const rollbackRequest = (await passPrechecks(run, environment)) ?? (await runSteps(run, environment, 'execute', cr.steps));
    if (rollbackRequest) return rollBack(run, rollbackRequest);
    await announce(run, 'environment-done', `${board.title()}: ${environment} done`, environment);
  }

  if (cr.rollback.length === 0) {
    board.finish('complete', `complete on ${cr.environments.join(', ')}; it has no rollback steps`);
    await announce(run, 'finished', `${board.title()} complete on ${cr.environments.join(', ')}`);
    return board.snapshot();
  }
  const until = new Date(Date.now() + plan.rollbackWindowMs).toISOString();
  board.complete(until, `complete on ${cr.environments.join(', ')}`);
  await announce(run, 'finished', `${board.title()} complete on ${cr.environments.join(', ')}; rollback possible until ${until}`);
  const request = await desk.waitForRollbackRequest(plan.rollbackWindowMs);
  if (request) return rollBack(run, request);
  board.finish('complete', `complete on ${cr.environments.join(', ')}; the rollback window (${formatDuration(plan.rollbackWindowMs)}) has closed`);
  return board.snapshot();
}

async function passApprovals(run: Run): Promise<void> {
  const { plan, board, desk } = run;
  const cr = plan.changeRequest;
  board.show('waiting-approval', undefined, approvalWaitText(board.snapshot().approvals, cr.requestedBy, plan.checksum));
  const outcome = await desk.waitForApprovals('the change', plan.approvals, plan.approvalTimeoutMs, (role, user) => board.approved(role, user));
  if (!outcome.approved) {
    board.finish(outcome.by ? 'rejected' : 'failed', `not approved: ${outcome.reason}`);
    await announce(run, 'finished', `${board.title()} not approved: ${outcome.reason}`);
    throw ApplicationFailure.create({ type: outcome.by ? 'ChangeRejected' : 'ApprovalTimedOut', nonRetryable: true, message: outcome.reason });
  }
}

/**
 * The data-aware prechecks of the change's SQL against this environment (orphans for a new foreign key, NULLs,
 * duplicates, rewrites), before any step runs there. Returns the rollback request if a person chose rollback.
 */
async function passPrechecks(run: Run, environment: string): Promise<Resolution | undefined> {
  const { board } = run;
  const sources = run.plan.changeRequest.steps.flatMap((step) =>
    step.kind === 'sql' ? [{ label: run.file, sql: step.sql, startLine: step.sqlLine, transactional: step.transaction, ...(step.database ? { database: step.database } : {}) }] : [],
  );
  if (sources.length === 0) return undefined;
  for (;;) {
    board.show('in-progress', environment, `prechecks on ${environment}`);
    let message: string;
    try {
      const findings = await run.steps.precheckSql.executeWithOptions({ summary: `prechecks on ${environment}` }, [{ environment, sources }]);
      board.recordFindings(environment, findings);
      const blocking = describeBlocking(findings);
      if (!blocking) return undefined;
      message = `prechecks block the change on ${environment}: ${blocking}`;
    } catch (error) {
      if (!(error instanceof ActivityFailure)) throw error;
      message = `prechecks on ${environment} failed: ${error.cause?.message ?? error.message}`;
    }
    const resolution = await block(run, environment, message, actionsAfterFailure(run, 'execute'));
    if (resolution.action === 'rollback') return resolution;
  }
}

/** What a person may do about a failure: a rollback only while executing, and only if the CR has rollback steps. */
function actionsAfterFailure(run: Run, phase: Phase): ResolveAction[] {
  return phase === 'execute' && run.plan.changeRequest.rollback.length > 0 ? ['retry', 'rollback', 'abort'] : ['retry', 'abort'];
}

/** Runs a list of steps on one environment; returns the rollback request if a person chose rollback after a failure. */
async function runSteps(run: Run, environment: string, phase: Phase, steps: ChangeStep[]): Promise<Resolution | undefined> {
  const { board } = run;
  const checks: CheckResults = {};
  for (const [index, step] of steps.entries()) {
    if (!shouldRun(step, checks)) {
      board.record({ environment, phase, id: step.id, kind: step.kind, outcome: 'skipped', durationMs: 0, note: `runs only if ${step.when!.check} ${step.when!.outcome}` });
      continue;
    }
    for (;;) {
      board.running(environment, phase, step, index, steps.length);
      const attempt = await attemptStep(run, environment, phase, step, checks);
      if (attempt.record) board.record(attempt.record);
      if (attempt.failure === undefined) break;
      const resolution = await block(run, environment, attempt.failure, actionsAfterFailure(run, phase));
      if (resolution.action === 'rollback') return resolution;
    }
  }
  return undefined;
}

/** A step's outcome to record, and the failure that blocks the change, if it failed. */
type Attempt = { record?: StepRecord; failure?: string };

async function attemptStep(run: Run, environment: string, phase: Phase, step: ChangeStep, checks: CheckResults): Promise<Attempt> {
  const { plan, board, desk } = run;
  const base = { environment, phase, id: step.id, kind: step.kind };
  const summary = `${phase === 'execute' ? 'run' : 'roll back:'} ${step.kind} ${step.id} on ${environment}`;
  try {
    if (step.kind === 'sql') {
      const { workflowId, runId } = workflowInfo();
      const stepRun = { changeId: plan.changeRequest.id, checksum: plan.checksum, environment, phase, workflowId, runId };
      const runSql = () => run.steps.runChangeSql.executeWithOptions({ summary }, [{ run: stepRun, step, settings: stepSettings(plan.settings, {}, step) }]);
      const result = await runStoppable(desk, environment, () => retryStatementTimeouts((retry) => board.stepProgress({ step: step.id, retry }), runSql));
      const record = (done: typeof result.done) => done && { ...base, outcome: done.outcome, durationMs: done.durationMs, attempts: done.attempt, lockRetries: done.lockRetries };
      if (result.stopped) {
        // The stop came as it finished: what it applied stays recorded (a rollback knows of it), and nothing more runs.
        if (result.done) board.record(record(result.done)!);
        return endAborted(run, environment, result.stopped, `stopped ${phase} step ${step.id} while it ran; its SQL was cancelled and rolled back`);
      }
      return { record: record(result.done) };
    }
    if (step.kind === 'check') {
      const result = await run.steps.runChangeCheck.executeWithOptions({ summary }, [{ environment, step, settings: plan.settings }]);
      checks[step.id] = result.passed ? 'passed' : 'failed';
      const record: StepRecord = { ...base, outcome: result.passed ? 'passed' : 'failed', durationMs: result.durationMs, note: result.observed };
      if (result.passed || step.onFail === 'continue') return { record };
      return { record, failure: `check ${step.id} failed: ${result.observed}` };
    }
    board.show('waiting-approval', environment, `waiting for approval by ${step.roles.join(' or ')} before ${step.id} on ${environment} (checksum ${plan.checksum.slice(0, 12)})`);
    const outcome = await desk.waitForApproval(environment, step.roles, plan.approvalTimeoutMs);
    if (!outcome.approved) return { failure: `approval ${step.id}: ${outcome.reason}` };
    return { record: { ...base, outcome: 'approved', durationMs: 0, note: `approved by ${outcome.by}` } };
  } catch (error) {
    if (!(error instanceof ActivityFailure)) throw error;
    return { failure: describeStepFailure(error) };
  }
}

async function block(run: Run, environment: string, message: string, actions: ResolveAction[]): Promise<Resolution> {
  const { board, desk } = run;
  board.block(environment, message, actions);
  // Listen before notifying: a person who reacts to the notification at once must find the change waiting.
  const decided = desk.waitForResolution(environment, actions);
  await announce(run, 'blocked', `${board.title()} is blocked on ${environment}: ${message}`, environment);
  const resolution = await decided;
  if (resolution.action === 'abort') return endAborted(run, environment, resolution, message);
  board.resume(environment, `${resolution.action} by ${resolution.user} on ${environment}`);
  return resolution;
}

/** A person's abort ends the change as failed: nothing more runs, and the status says who and why. */
async function endAborted(run: Run, environment: string, resolution: Resolution, message: string): Promise<never> {
  const why = resolution.comment ? ` ("${resolution.comment}")` : '';
  run.board.finish('failed', `aborted by ${resolution.user}${why} on ${environment}: ${message}`);
  await announce(run, 'finished', `${run.board.title()} aborted by ${resolution.user} on ${environment}`);
  throw ApplicationFailure.create({ type: 'ChangeAborted', nonRetryable: true, message: `aborted by ${resolution.user}: ${message}` });
}

/** The rollback steps, on every environment the change touched, newest first; a failing step blocks, never skips. */
async function rollBack(run: Run, request: Resolution): Promise<ChangeRequestStatus> {
  const { plan, board } = run;
  const environments = board.changedEnvironments().reverse();
  const why = `requested by ${request.user}${request.comment ? `: ${request.comment}` : ''}`;
  await announce(run, 'rolling-back', `${board.title()}: rolling back on ${environments.join(', ') || 'no environment'} (${why})`);
  for (const environment of environments) {
    await runSteps(run, environment, 'rollback', plan.changeRequest.rollback);
  }
  const where = environments.length > 0 ? `on ${environments.join(', ')}` : 'with nothing to undo (no step had been applied)';
  board.finish('rolled-back', `rolled back ${where}, ${why}`);
  await announce(run, 'finished', `${board.title()} rolled back ${where}`);
  return board.snapshot();
}

/** The dry run: each environment rehearses the steps and the rollback in a transaction that is rolled back. */
async function rehearse(run: Run): Promise<ChangeRequestStatus> {
  const { plan, board } = run;
  const cr = plan.changeRequest;
  for (const environment of cr.environments) {
    board.show('in-progress', environment, `rehearsing on ${environment} (rolled back at the end)`);
    const report = await rehearseChange.executeWithOptions({ summary: `dry run on ${environment}` }, [{ environment, steps: cr.steps, rollback: cr.rollback, settings: plan.settings }]);
    for (const step of report.steps) {
      board.record({ environment, phase: step.phase, id: step.id, kind: step.kind, outcome: step.outcome, durationMs: step.durationMs, note: step.note, locks: step.locks });
    }
    if (report.error) {
      board.finish('failed', `dry run failed on ${environment}: ${report.error}`);
      return board.snapshot();
    }
  }
  board.finish('rehearsed', `dry run on ${cr.environments.join(', ')}: every step rehearsed and rolled back; nothing changed`);
  return board.snapshot();
}

async function announce(run: Run, event: 'started' | 'environment-done' | 'blocked' | 'finished' | 'rolling-back', text: string, environment?: string) {
  if (run.dryRun) return;
  // A lost notification must not stop a database change.
  await notify({ event, text, workflowId: workflowInfo().workflowId, environment }).catch(() => undefined);
}

function checkInput(input: ChangeRequestInput): void {
  const problems: string[] = [];
  if (!input || typeof input !== 'object') problems.push('input must be a JSON object {"file", "content", "checksum"}; start it with `dbchange cr execute FILE`');
  else {
    for (const key of ['file', 'content', 'checksum'] as const) {
      if (typeof input[key] !== 'string' || input[key] === '') problems.push(`"${key}" is required`);
    }
    if (input.dryRun !== undefined && typeof input.dryRun !== 'boolean') problems.push('"dryRun" must be true or false');
  }
  if (problems.length > 0) throw ApplicationFailure.create({ type: 'InvalidInput', nonRetryable: true, message: problems.join('; ') });
}
