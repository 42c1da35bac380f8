// The post-deploy migration pipeline's public shapes: input, status snapshot and result.
import type { CompatibilityResult } from './compatibility';
import type { FleetState, FleetStatus } from './fleet-progress';
import type { DecisionRecord, SigningGate } from './decisions';
import type { LintFinding } from './lint-rules';
import type { OutOfOrderFinding, OutOfOrderPolicy } from './out-of-order';
import type { PrecheckFinding } from './prechecks';
import type { RetryNotice } from './step-retries';

export const PIPELINE_WORKFLOW_TYPE = 'postDeployMigrationPipeline';
/** 2: results[].migrations, lint and prechecks hold the recent entries; counts and the ledgers hold them all. */
export const STATUS_VERSION = 2;

export interface PipelineInput {
  /** Environment names in config order; empty or absent means all of them. */
  environments?: string[];
  packageVersion?: string;
  requestedBy: string;
  /** Set by the pipeline itself when it continues as new: where it was, and its status so far. */
  resume?: PipelineResume;
}

/** What one run of a pipeline hands the next: where to go on (applying there, or from its gates), and the status. */
export interface PipelineResume {
  environment: string;
  /** True when an earlier run passed `environment`'s gates and was applying its migrations. */
  applying: boolean;
  /** The database (address) it was applying, when the environment has several; absent means its first. */
  target?: string;
  /** A fleet's rollout, where it stands. */
  fleet?: FleetState;
  /** Each database's digest of the pending files a signed approval permitted, checked before they run. */
  approved?: Record<string, string>;
  status: PipelineStatus;
}

export type PipelineStage =
  | 'starting'
  | 'waiting-checks'
  /** A migration's `-- dbchange:requires-backfill` backfill has not finished on this database yet. */
  | 'waiting-backfill'
  | 'applying'
  | 'qa'
  | 'checking'
  | 'waiting-approval'
  | 'blocked'
  | 'complete'
  | 'nothing-pending'
  | 'failed'
  | 'rejected'
  | 'aborted';

export const FINAL_STAGES: readonly PipelineStage[] = ['complete', 'nothing-pending', 'failed', 'rejected', 'aborted'];

/** skipped: its `-- dbchange:databases` header names other databases; recorded here as done without running. */
export type MigrationOutcomeKind = 'applied' | 'already-applied' | 'marked-complete' | 'skipped' | 'failed';

export interface MigrationOutcome {
  version: string;
  name: string;
  outcome: MigrationOutcomeKind;
  durationMs: number;
  /** Attempts of the apply activity, plus in-activity lock-timeout retries. */
  attempts: number;
  lockRetries?: number;
  error?: string;
  /** What else happened, e.g. an INVALID index left by an interrupted build was dropped and built again. */
  note?: string;
}

export interface QaResult {
  command: string;
  exitCode: number | null;
  passed: boolean;
  timedOut: boolean;
  durationMs: number;
  /** The last lines of its output, for the person deciding what to do next. */
  outputTail: string;
}

export type OutcomeCounts = Record<MigrationOutcomeKind, number>;

/** What happened on one database: its migrations and what its gates found. */
export interface TargetResult {
  /** The most recent outcomes, oldest first; `counts` counts them all, and each database's ledger lists them all. */
  migrations: MigrationOutcome[];
  counts: OutcomeCounts;
  /** What the gates found before and after this environment's migrations; blocking findings also block. */
  prechecks?: PrecheckFinding[];
  /** The last lint findings; lintCount and lintByRule count all of them. */
  lint?: LintFinding[];
  lintCount?: number;
  lintByRule?: Record<string, number>;
  compatibility?: CompatibilityResult;
  drift?: string[];
}

/**
 * One environment. With one database its results are here; with several (`databases`), each database's are in
 * `databases`, and `counts` here adds them up.
 */
export interface EnvironmentResult extends TargetResult {
  environment: string;
  databases?: (TargetResult & { database: string })[];
  /** A fleet's rollout: each wave's counts, and its blocked and given-up targets by name. */
  fleet?: FleetStatus;
  qa?: QaResult;
  done: boolean;
}

/** What a migration meets before it is applied: lint findings (advisory) and data-aware prechecks. */
export interface MigrationGateReport {
  lint: LintFinding[];
  prechecks: PrecheckFinding[];
}

export interface PipelineStatus {
  version: typeof STATUS_VERSION;
  kind: 'pdm';
  stage: PipelineStage;
  environments: string[];
  environment?: string;
  /** The migration being applied, or the first of the batch being applied (`batch` says up to which). */
  migration?: { index: number; total: number; version: string; name: string; batch?: { count: number; lastVersion: string } };
  waitingFor?: string;
  /** The running migration's last failed try, while it waits for the next (waitingFor says it in words). */
  retry?: RetryNotice;
  lastError?: string;
  requestedBy: string;
  packageVersion?: string;
  decisions: DecisionRecord[];
  /** Accepted decisions are all kept; refusals beyond the most recent ones are only counted here. */
  refusalsDropped?: number;
  /** Every block, in full: where, on which migration, and the message a person saw. */
  blocks: BlockRecord[];
  results: EnvironmentResult[];
  /** Which run of the workflow this is: a long pipeline continues as new, carrying this status. */
  run: number;
  /** While a decision is awaited: what a signed one must name (`dbchange approve --print-statement`). */
  signing?: SigningGate;
  /** Pending versions older than one already applied there, per environment, as last listed; kept after they ran. */
  outOfOrder?: { policy: OutOfOrderPolicy; environments: OutOfOrderFinding[] };
  summary?: string;
}

export interface BlockRecord {
  at: string;
  environment: string;
  version?: string;
  message: string;
}

/** One pipeline per set of environments: the id says which. */
export function pipelineWorkflowId(environments: string[]): string {
  return `pdm-${environments.join('+')}`;
}
