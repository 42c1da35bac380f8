// Follows a workflow until it ends: a live progress line on stderr, the final snapshot returned.
import type { Client } from '@temporalio/client';
import type { ChangeRequestStatus } from '../core/change-status';
import type { PipelineStatus } from '../core/pipeline';
import { changeRequestStatus, isChangeSettled } from './change-client';
import { describeChangeProgress } from './change-text';
import { CliError, createLiveLine } from './output';
import { isFinal, pipelineStatus } from './pipeline-client';
import { describeProgress } from './snapshot-text';

const POLL_MS = 1_000;
/** Pause after a status query that failed (no worker answered in time): the workflow is fine, only its answer is late. */
const QUERY_RETRY_MS = 2_000;

interface Followed<T> {
  read(): Promise<T>;
  describe(snapshot: T): string;
  settled(snapshot: T): boolean;
  /** The snapshot to return when the workflow closed without reaching a settled stage. */
  closed(snapshot: T, status: string): T;
}

async function follow<T>(client: Client, workflowId: string, followed: Followed<T>): Promise<T> {
  const line = createLiveLine();
  try {
    for (;;) {
      let snapshot: T;
      try {
        snapshot = await followed.read();
      } catch (error) {
        if (error instanceof CliError) throw error;
        // A query waits for a worker; a busy or restarting one answers late. Say so and ask again.
        line.update(`waiting for a worker to answer the status query (${error instanceof Error ? error.message : String(error)})`);
        await new Promise((resolve) => setTimeout(resolve, QUERY_RETRY_MS));
        continue;
      }
      line.update(followed.describe(snapshot));
      if (followed.settled(snapshot)) return snapshot;
      const { status } = await client.workflow.getHandle(workflowId).describe();
      if (status.name !== 'RUNNING') return followed.closed(snapshot, status.name.toLowerCase());
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    line.done();
  }
}

export function followPipeline(client: Client, workflowId: string): Promise<PipelineStatus> {
  return follow(client, workflowId, {
    read: () => pipelineStatus(client, workflowId),
    describe: (snapshot) => (isFinal(snapshot) ? `[${snapshot.stage}] ${snapshot.summary ?? ''}` : describeProgress(snapshot)),
    settled: isFinal,
    closed: (snapshot, status) => ({ ...snapshot, stage: 'failed', summary: `workflow ${status}` }),
  });
}

/** Follows a change request until it is complete (its rollback window may stay open), rolled back or ended. */
export function followChange(client: Client, workflowId: string): Promise<ChangeRequestStatus> {
  return follow(client, workflowId, {
    read: () => changeRequestStatus(client, workflowId),
    describe: describeChangeProgress,
    settled: isChangeSettled,
    closed: (snapshot, status) => ({ ...snapshot, stage: 'failed', summary: `workflow ${status}` }),
  });
}
