// The shape every benchmark returns: per-method medians for the table, goals marked met or not, and raw runs.
export interface MethodRow {
  method: string;
  /** Column name → median over the repetitions. */
  medians: Record<string, number>;
}

export interface Goal {
  goal: string;
  measured: string;
  met: boolean;
  /** What limits it, when not met. */
  limitedBy?: string;
}

export interface BenchResult {
  name: string;
  title: string;
  setup: string;
  reps: number;
  columns: string[];
  rows: MethodRow[];
  goals: Goal[];
  runs: unknown[];
}
