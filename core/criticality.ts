// Change criticality, C1 (highest risk) to C4, and who must approve each by default (seed 000's checklists).
export const CRITICALITIES = ['C1', 'C2', 'C3', 'C4'] as const;
export type Criticality = (typeof CRITICALITIES)[number];

/** C1/C2: the SRE on call and an infrastructure manager, two people; C3: one reviewer; C4: none. */
export const DEFAULT_CR_APPROVALS: Record<Criticality, string[]> = {
  C1: ['eoc', 'manager'],
  C2: ['eoc', 'manager'],
  C3: ['reviewer'],
  C4: [],
};

/** Criticalities whose running changes hold other changes on the same environment. */
export const HOLDING_CRITICALITIES: readonly Criticality[] = ['C1', 'C2'];
