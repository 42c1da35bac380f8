// How a workflow checks signed decisions: an activity verifies the SSH signature against the keys in
// dbchange.yaml (ssh-keygen -Y verify), so the verdict is recorded in history and replays the same.
import { ActivityFailure, proxyActivities } from '@temporalio/workflow';
import type { DbChangeActivities } from '../activities';
import type { SigningGate } from '../core/decisions';
import type { DecisionSigning } from './decision-desk';

const { verifyDecisionSignature } = proxyActivities<DbChangeActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', maximumAttempts: 3 },
});

/** Signing as the plan says: undefined for plans made before dbchange checked signatures (they accept none). */
export function decisionSigning(signatures: 'optional' | 'required' | undefined): DecisionSigning | undefined {
  if (!signatures) return undefined;
  return {
    required: signatures === 'required',
    async verify(input) {
      try {
        return await verifyDecisionSignature(input);
      } catch (error) {
        if (!(error instanceof ActivityFailure)) throw error;
        return { ok: false, reason: `the signature could not be checked: ${error.cause?.message ?? error.message}` };
      }
    },
  };
}

/** A status snapshot with what a decision signed now must name, while one is awaited. */
export function withSigning<T extends { signing?: SigningGate }>(snapshot: T, signing: SigningGate | undefined): T {
  return signing ? { ...snapshot, signing } : snapshot;
}
