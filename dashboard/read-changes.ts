// The running pipelines and change requests of this project, found by a visibility query on dbchange's search
// attributes and then asked for their status: the dashboard only reads, it never signals or updates.
import type { Client } from '@temporalio/client';
import type { ChangeRequestStatus } from '../core/change-status';
import type { FleetGrid } from '../core/fleet-grid';
import type { TargetIssue } from '../core/fleet-progress';
import { personAction, type PersonAction } from '../core/person-actions';
import type { PipelineStatus } from '../core/pipeline';
import { KIND, STATUS } from '../core/search-attributes';
import { changeStatus, fleetTargets, status } from '../workflows/messages';

/** A worker that is down cannot answer; the page must not wait for it. */
export const QUERY_TIMEOUT_MS = 3_000;
/** Enough for every change a release manager follows at once; more are counted, not shown. */
export const MAX_CHANGES = 100;

export interface FleetRollout extends FleetGrid {
  blocked: TargetIssue[];
  failed: TargetIssue[];
}

export interface RunningChange {
  workflowId: string;
  kind: 'pdm' | 'cr';
  /** What the change is: the pipeline's package and environments, or the CR's title. */
  title: string;
  /** The workflow's stage; the DbChangeStatus search attribute when it did not answer. */
  stage: string;
  environment?: string;
  waitingFor?: string;
  startedAt: string;
  /** What a person must decide, with the command to copy; undefined when it waits for nobody. */
  action?: PersonAction;
  fleet?: FleetRollout;
  /** True when no worker answered the status query in time. */
  unanswered?: boolean;
}

export interface ChangesRead {
  changes: RunningChange[];
  /** Running changes past MAX_CHANGES, not shown. */
  more: number;
}

/** Every running pipeline and change request on `taskQueue`, each with its stage, what it waits for and its fleet. */
export async function readRunningChanges(client: Client, taskQueue: string): Promise<ChangesRead> {
  const query = `${KIND.name} IN ('pdm', 'cr') AND ExecutionStatus = 'Running' AND TaskQueue = '${taskQueue.replace(/'/g, "\\'")}'`;
  const listed: { workflowId: string; runId: string; kind: 'pdm' | 'cr'; stage: string; startedAt: string }[] = [];
  let more = 0;
  for await (const execution of client.workflow.list({ query, pageSize: MAX_CHANGES })) {
    if (listed.length >= MAX_CHANGES) {
      more++;
      continue;
    }
    listed.push({
      workflowId: execution.workflowId,
      runId: execution.runId,
      kind: execution.typedSearchAttributes.get(KIND) === 'cr' ? 'cr' : 'pdm',
      stage: execution.typedSearchAttributes.get(STATUS) ?? 'starting',
      startedAt: execution.startTime.toISOString(),
    });
  }
  const changes = await Promise.all(listed.map((listing) => (listing.kind === 'pdm' ? readPipeline(client, listing) : readChangeRequest(client, listing))));
  // Who waits for a person comes first, then the newest.
  changes.sort((a, b) => Number(Boolean(b.action)) - Number(Boolean(a.action)) || b.startedAt.localeCompare(a.startedAt));
  return { changes, more };
}

type Listing = { workflowId: string; runId: string; stage: string; startedAt: string };

async function readPipeline(client: Client, listing: Listing): Promise<RunningChange> {
  const handle = client.workflow.getHandle(listing.workflowId);
  const snapshot = await withTimeout(handle.query(status));
  if (!snapshot) return unanswered(listing, 'pdm', 'post-deploy migrations');
  const fleetResult = snapshot.results.find((result) => result.fleet && !result.done);
  const grid = fleetResult ? await withTimeout(handle.query(fleetTargets)) : undefined;
  return {
    workflowId: listing.workflowId,
    kind: 'pdm',
    title: pipelineTitle(snapshot),
    stage: snapshot.stage,
    environment: snapshot.environment,
    waitingFor: snapshot.waitingFor,
    startedAt: listing.startedAt,
    action: personAction({ workflowId: listing.workflowId, stage: snapshot.stage, waitingFor: snapshot.waitingFor }),
    ...(grid && fleetResult?.fleet ? { fleet: { ...grid, ...issuesOf(fleetResult.fleet.waves) } } : {}),
  };
}

async function readChangeRequest(client: Client, listing: Listing): Promise<RunningChange> {
  const snapshot: ChangeRequestStatus | undefined = await withTimeout(client.workflow.getHandle(listing.workflowId).query(changeStatus));
  if (!snapshot) return unanswered(listing, 'cr', 'change request');
  return {
    workflowId: listing.workflowId,
    kind: 'cr',
    title: `${snapshot.criticality} ${snapshot.title} (${snapshot.environments.join(' → ')})`,
    stage: snapshot.stage,
    environment: snapshot.environment,
    waitingFor: snapshot.waitingFor,
    startedAt: listing.startedAt,
    action: personAction({ workflowId: listing.workflowId, stage: snapshot.stage, waitingFor: snapshot.waitingFor, checksum: snapshot.checksum }),
  };
}

function pipelineTitle(snapshot: PipelineStatus): string {
  return `post-deploy migrations${snapshot.packageVersion ? ` for ${snapshot.packageVersion}` : ''}: ${snapshot.environments.join(' → ')}, requested by ${snapshot.requestedBy}`;
}

/** The blocked and given-up targets the status names (the first SHOWN_TARGETS of each wave). */
function issuesOf(waves: { blockedTargets: TargetIssue[]; failedTargets: TargetIssue[] }[]): { blocked: TargetIssue[]; failed: TargetIssue[] } {
  return { blocked: waves.flatMap((wave) => wave.blockedTargets), failed: waves.flatMap((wave) => wave.failedTargets) };
}

function unanswered(listing: Listing, kind: 'pdm' | 'cr', title: string): RunningChange {
  return { workflowId: listing.workflowId, kind, title, stage: listing.stage, startedAt: listing.startedAt, unanswered: true, waitingFor: `no worker answered the status query within ${QUERY_TIMEOUT_MS / 1000} s` };
}

function withTimeout<T>(promise: Promise<T>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), QUERY_TIMEOUT_MS)));
  return Promise.race([promise.catch(() => undefined), timeout]).finally(() => clearTimeout(timer));
}
