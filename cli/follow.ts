// Follows a pipeline until it ends: a live progress line on stderr, the final snapshot returned.
import type { Client } from '@temporalio/client';
import type { PipelineStatus } from '../core/pipeline';
import { createLiveLine } from './output';
import { isFinal, pipelineStatus } from './pipeline-client';
import { describeProgress } from './snapshot-text';

const POLL_MS = 1_000;

export async function followPipeline(client: Client, workflowId: string): Promise<PipelineStatus> {
  const line = createLiveLine();
  try {
    for (;;) {
      const snapshot = await pipelineStatus(client, workflowId);
      line.update(isFinal(snapshot) ? `[${snapshot.stage}] ${snapshot.summary ?? ''}` : describeProgress(snapshot));
      if (isFinal(snapshot)) return snapshot;
      const { status } = await client.workflow.getHandle(workflowId).describe();
      if (status.name !== 'RUNNING') return { ...snapshot, stage: 'failed', summary: `workflow ${status.name.toLowerCase()}` };
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    line.done();
  }
}
