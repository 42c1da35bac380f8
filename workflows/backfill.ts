// backfill: walks one table's key range in batches on one environment's database. Each batch is an activity whose
// transaction also writes the batch's ledger row; batch sizes follow the target duration; pause conditions, a
// person's pause, resume and cancel, and a failing batch's resolve (retry | skip-batch | abort) are heard between
// batches. The run continues as new with a compact state, so its history stays short however long the table.
import { ActivityFailure, allHandlersFinished, ApplicationFailure, condition, continueAsNew, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { DbChangeActivities } from '../activities';
import { INITIAL_BATCH_SIZE, batchKeys, clampSize, nextBatchSize, splitBatchSize } from '../core/backfill';
import type { BackfillInput, BackfillStatus } from '../core/backfill-status';
import { checkBackfillControlPayload, isApprover, unrecordableReason, type BackfillControl, type ResolveAction } from '../core/decisions';
import { BackfillBoard } from './backfill-board';
import { DecisionDesk, type DecisionSignature } from './decision-desk';
import { decisionSigning, withSigning } from './decision-signing';
import { backfillStatus, cancelBackfill, pauseBackfill, resumeBackfill, stepProgress, type DecisionAnswer } from './messages';
import { describeStepFailure, transientRetryPolicy } from './running-step';

const NON_RETRYABLE_ERRORS = ['ConfigError', 'InvalidBackfill', 'BackfillFileChanged', 'BackfillBatchFailed'];
const { planBackfill, skipBackfillBatch, recordBackfillState, wakePipelinesWaitingFor } = proxyActivities<DbChangeActivities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 20, nonRetryableErrorTypes: NON_RETRYABLE_ERRORS },
});
const { runBackfillBatch } = proxyActivities<DbChangeActivities>({
  // Bounded by the batch's statement_timeout and its pacing; the heartbeat notices a worker that died mid-batch.
  startToCloseTimeout: '1h',
  heartbeatTimeout: '5s',
  // The activity gives up after lockRetry.maxAttempts tries of a transient error, and the batch blocks.
  retry: transientRetryPolicy(NON_RETRYABLE_ERRORS),
});

export const BATCH_ACTIONS: readonly ResolveAction[] = ['retry', 'skip-batch', 'abort'];
/** A run hands over after this many events: far below Temporal's warnings, so a replay stays quick. */
const EVENTS_PER_RUN = 1_000;
/** While a condition holds, it is looked at again after this long, growing ×1.5 up to the slow ceiling. */
const MIN_RECHECK_MS = 1_000;
const MAX_RECHECK_MS = 30_000;

export async function backfill(input: BackfillInput): Promise<BackfillStatus> {
  checkInput(input);
  const board = new BackfillBoard(input, []);
  setHandler(backfillStatus, () => board.snapshot());
  const plan = await planBackfill({ environment: input.environment, name: input.name });
  // A run planned before backfills knew of signatures has none in its recorded plan, and replays as it ran.
  const { spec, signatures } = plan;
  // Every decision about this backfill names the database it runs on and the file's checksum.
  const gate = { gate: plan.target, digest: `sha256:${spec.checksum}` };
  const desk = new DecisionDesk(plan.approvers, input.requestedBy, spec.checksum, decisionSigning(signatures), board.decisions);
  desk.install();
  if (signatures) setHandler(backfillStatus, () => withSigning(board.snapshot(), { runId: workflowInfo().runId, ...gate }));
  let cancelled: BackfillControl | undefined;
  installControls(board, plan.approvers, (control) => (cancelled = control), signatures ? (kind, control) => desk.checkSigned({ decision: kind, user: control.user }, control.signed, gate) : undefined);
  board.planned(plan.target, spec.table, input.resume?.progress ?? { range: plan.range, cursor: plan.cursor, rowsDone: plan.rowsDone, batchesDone: 0, workingMs: 0 }, clampSize(INITIAL_BATCH_SIZE, spec.maxBatchSize));
  const ref = { environment: input.environment, name: input.name };
  const endAs = async (state: 'finished' | 'cancelled' | 'aborted', summary: string, decidedBy?: string) => {
    board.finish(state, summary);
    await recordBackfillState({ ...ref, state, rowsDone: board.progress!.rowsDone, ...(decidedBy ? { decidedBy } : {}) });
    if (state === 'finished') await wakePipelinesWaitingFor({ target: plan.target, name: input.name }).catch(() => undefined);
    await condition(allHandlersFinished);
    return board.snapshot();
  };
  if (plan.finished) return endAs('finished', plan.editedAfterFinish ?? `${spec.fileName} had already finished on ${plan.target}`);

  // The running batch's failed tries, as its activity reports them; a late report about an earlier batch is dropped.
  let runningBatch: string | undefined;
  setHandler(stepProgress, (progress) => {
    if (progress.retry && progress.step === runningBatch) board.retrying(progress.retry);
  });

  let recheckMs = MIN_RECHECK_MS;
  for (;;) {
    const progress = board.progress!;
    if (cancelled) return endAs('cancelled', `cancelled by ${cancelled.user}${cancelled.comment ? `: ${cancelled.comment}` : ''}`, cancelled.user);
    if (progress.cursor >= progress.range.end) return endAs('finished', `finished: ${progress.rowsDone} rows in ${progress.batchesDone} batches`);
    if (board.pausedBy) {
      board.pausedByPerson();
      await condition(() => !board.pausedBy || cancelled !== undefined);
      continue;
    }
    if (runIsFull()) {
      await condition(allHandlersFinished);
      return continueAsNew<typeof backfill>({ ...input, resume: board.carry() });
    }
    const start = progress.cursor;
    const end = Math.min(progress.range.end, start + board.batchSize);
    let result: Awaited<ReturnType<typeof runBackfillBatch>>;
    runningBatch = batchKeys({ start, end });
    try {
      result = await runBackfillBatch.executeWithOptions({ summary: `${input.name}: keys ${start}..${end - 1} on ${plan.target}` }, [{ ...ref, checksum: spec.checksum, start, end, checkPause: true }]);
    } catch (error) {
      if (!(error instanceof ActivityFailure)) throw error;
      const message = describeStepFailure(error);
      board.blocked(start, end, message, BATCH_ACTIONS);
      const resolution = await Promise.race([desk.waitForResolution(plan.target, BATCH_ACTIONS), condition(() => cancelled !== undefined).then(() => undefined)]);
      board.unblocked();
      if (!resolution) continue;
      if (resolution.action === 'abort') return endAs('aborted', `aborted by ${resolution.user} on keys ${start}..${end - 1}: ${message}`, resolution.user);
      if (resolution.action === 'skip-batch') {
        await skipBackfillBatch({ ...ref, start, end, decidedBy: resolution.user, error: message });
        board.skipped(end);
      }
      board.running();
      continue;
    }
    if (result.kind === 'paused') {
      board.pausedByCondition(result.reason);
      await condition(() => cancelled !== undefined || board.pausedBy !== undefined, recheckMs);
      recheckMs = Math.min(MAX_RECHECK_MS, Math.round(recheckMs * 1.5));
      continue;
    }
    recheckMs = Math.max(MIN_RECHECK_MS, Math.min(MAX_RECHECK_MS, spec.targetBatchMs));
    if (result.kind === 'timed-out') {
      board.timedOut(splitBatchSize(end - start));
      continue;
    }
    board.batchDone(result.rows, result.durationMs, end, nextBatchSize(end - start, result.durationMs, spec.targetBatchMs, spec.maxBatchSize));
  }
}

type ControlKind = 'pause' | 'resume' | 'cancel';
type SignatureCheck = (kind: ControlKind, control: BackfillControl) => Promise<string | { signature?: DecisionSignature }>;

/** pause, resume and cancel: from configured approvers only, signed when dbchange.yaml asks, each recorded. */
function installControls(board: BackfillBoard, approvers: Record<string, string[]>, onCancel: (control: BackfillControl) => void, checkSignature?: SignatureCheck): void {
  const decide = async (kind: ControlKind, payload: unknown): Promise<DecisionAnswer> => {
    const checked = checkBackfillControlPayload(payload);
    const user = checked.ok ? checked.value.user : String((payload as { user?: unknown })?.user ?? '(missing)').slice(0, 100);
    const record = { at: new Date().toISOString(), kind, user, environment: board.state.environment, ...(checked.ok && checked.value.comment ? { comment: checked.value.comment } : {}) };
    const refuse = (reason: string): DecisionAnswer => {
      board.decisions.push({ ...record, accepted: false, reason });
      return { accepted: false, reason };
    };
    const problem = () => (!checked.ok ? checked.error : !isApprover(approvers, user) ? `${user} is not a configured approver (add them under approvers in dbchange.yaml)` : stateRefusal(board, kind));
    const before = problem();
    if (before) return refuse(before);
    const control = (checked as { value: BackfillControl }).value;
    const signature = checkSignature ? await checkSignature(kind, control) : {};
    if (typeof signature === 'string') return refuse(signature);
    // The signature's check took an activity: the backfill may have ended, or been paused, meanwhile.
    const after = problem();
    if (after) return refuse(after);
    if (kind === 'pause') board.pausedBy = { user, at: record.at };
    if (kind === 'resume') board.pausedBy = undefined;
    if (kind === 'cancel') onCancel(control);
    const reason = kind === 'pause' ? 'paused after the running batch' : kind === 'resume' ? 'resumed' : 'cancelled after the running batch';
    board.decisions.push({ ...record, accepted: true, reason, ...signature });
    return { accepted: true, reason };
  };
  const validator = (payload: unknown) => {
    const reason = unrecordableReason(payload, checkBackfillControlPayload);
    if (reason) throw new Error(reason);
  };
  setHandler(pauseBackfill, (payload) => decide('pause', payload), { validator });
  setHandler(resumeBackfill, (payload) => decide('resume', payload), { validator });
  setHandler(cancelBackfill, (payload) => decide('cancel', payload), { validator });
}

function stateRefusal(board: BackfillBoard, kind: ControlKind): string | undefined {
  if (board.state.finishedAt) return `the backfill already ended (${board.state.state})`;
  if (kind === 'pause' && board.pausedBy) return `already paused by ${board.pausedBy.user}`;
  if (kind === 'resume' && !board.pausedBy) return 'not paused by a person; a pause condition resumes by itself once it no longer holds';
  return undefined;
}

function runIsFull(): boolean {
  const info = workflowInfo();
  return info.continueAsNewSuggested || info.historyLength >= EVENTS_PER_RUN;
}

function checkInput(input: BackfillInput): void {
  const ok = input && typeof input === 'object' && typeof input.environment === 'string' && typeof input.name === 'string' && typeof input.requestedBy === 'string' && input.requestedBy !== '';
  if (!ok) throw ApplicationFailure.create({ type: 'InvalidInput', nonRetryable: true, message: 'backfill input needs "environment", "name" and "requestedBy"' });
}
