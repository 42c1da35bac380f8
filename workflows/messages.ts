// Signals, updates and queries, defined once; the CLI and activities import these same definitions.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Approval, BackfillControl, Rejection, Resolution, RollbackRequest } from '../core/decisions';
import type { BackfillStatus } from '../core/backfill-status';
import { BACKFILL_FINISHED_SIGNAL } from '../core/backfill';
import type { ChangeRequestStatus } from '../core/change-status';
import type { FleetGrid } from '../core/fleet-grid';
import type { IncidentClose } from '../core/incident';
import type { PipelineStatus } from '../core/pipeline';

/** The immediate answer an update gives: accepted, or refused with the reason (the refusal is recorded). */
export interface DecisionAnswer {
  accepted: boolean;
  reason: string;
}

export const approve = defineSignal<[Approval]>('approve');
export const reject = defineSignal<[Rejection]>('reject');
export const resolve = defineSignal<[Resolution]>('resolve');

export const approveUpdate = defineUpdate<DecisionAnswer, [Approval]>('approve');
export const rejectUpdate = defineUpdate<DecisionAnswer, [Rejection]>('reject');
export const resolveUpdate = defineUpdate<DecisionAnswer, [Resolution]>('resolve');

export const rollback = defineSignal<[RollbackRequest]>('rollback');
export const rollbackUpdate = defineUpdate<DecisionAnswer, [RollbackRequest]>('rollback');

export const status = defineQuery<PipelineStatus>('status');
/** A fleet rollout's targets, each with its state, wave by wave (undefined before a fleet is rolled out). */
export const fleetTargets = defineQuery<FleetGrid | undefined>('fleetTargets');
/** The same `status` query, as a change request answers it. */
export const changeStatus = defineQuery<ChangeRequestStatus>('status');
export { stepProgress } from '../core/step-progress';

export const closeIncident = defineSignal<[IncidentClose]>('close');
export const incidentStatus = defineQuery<{ id: string; severity: number; title: string; open: boolean }>('status');

export const pauseBackfill = defineUpdate<DecisionAnswer, [BackfillControl]>('pause');
export const resumeBackfill = defineUpdate<DecisionAnswer, [BackfillControl]>('resume');
export const cancelBackfill = defineUpdate<DecisionAnswer, [BackfillControl]>('cancel');
/** The same `status` query, as a backfill answers it. */
export const backfillStatus = defineQuery<BackfillStatus>('status');
/** A backfill finished on a database: a pipeline waiting for it looks again at once instead of at its next timer. */
export const backfillFinished = defineSignal<[{ target: string; name: string }]>(BACKFILL_FINISHED_SIGNAL);
