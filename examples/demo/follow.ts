// Follows a pipeline through its `status` query: a stderr line per stage change and per migration outcome.
import type { Client, WorkflowHandle } from '@temporalio/client';
import { pipelineStatus } from '../../cli/pipeline-client';
import { describeProgress } from '../../cli/snapshot-text';
import type { PipelineStatus } from '../../core/pipeline';

const POLL_MS = 250;

export interface FollowOptions {
  /** Called once, the first time the pipeline waits for an approval. */
  onApprovalWait(snapshot: PipelineStatus): Promise<void>;
  /** Called once per environment whose migration waits for a backfill (`-- dbchange:requires-backfill`). */
  onBackfillWait?(snapshot: PipelineStatus): Promise<void>;
  print(line: string): void;
  /** Stops following early, e.g. on Ctrl-C. */
  signal: AbortSignal;
}

/** Resolves with the workflow's result; rejects with its failure, or when it blocks on an error. */
export async function followPipeline(client: Client, handle: WorkflowHandle, options: FollowOptions): Promise<PipelineStatus> {
  // However following ends, the calls still in flight are cancelled, so the client can be closed.
  const stopped = new AbortController();
  const signal = AbortSignal.any([options.signal, stopped.signal]);
  try {
    return await follow(client, handle, options, signal);
  } finally {
    stopped.abort();
  }
}

async function follow(client: Client, handle: WorkflowHandle, options: FollowOptions, signal: AbortSignal): Promise<PipelineStatus> {
  let ended = false;
  const result = client.withAbortSignal(signal, () => handle.result() as Promise<PipelineStatus>);
  result.then(() => (ended = true), () => (ended = true));
  const printed = new Set<string>();
  let lastStage = '';
  let approvalAsked = false;
  const backfillsStarted = new Set<string>();
  const show = (snapshot: PipelineStatus) => {
    for (const line of outcomeLines(snapshot)) {
      if (printed.has(line)) continue;
      printed.add(line);
      options.print(line);
    }
    const stage = stageLine(snapshot);
    if (stage !== lastStage) options.print((lastStage = stage));
  };
  while (!ended && !signal.aborted) {
    const snapshot = await client.withAbortSignal(signal, () => pipelineStatus(client, handle.workflowId)).catch(() => undefined);
    if (snapshot) show(snapshot);
    // The demo has no one to resolve a failure: stop following and say what blocked it.
    if (snapshot?.stage === 'blocked') throw new Error(`pipeline blocked on ${snapshot.environment}: ${snapshot.lastError}`);
    if (snapshot?.stage === 'waiting-approval' && !approvalAsked) {
      approvalAsked = true;
      await options.onApprovalWait(snapshot);
    }
    const waitingOn = snapshot?.stage === 'waiting-backfill' ? snapshot.environment?.split('/')[0] : undefined;
    if (waitingOn && options.onBackfillWait && !backfillsStarted.has(waitingOn)) {
      backfillsStarted.add(waitingOn);
      await options.onBackfillWait(snapshot!);
    }
    await Promise.race([result.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, POLL_MS))]);
  }
  const final = await result;
  show(final);
  return final;
}

function outcomeLines(snapshot: PipelineStatus): string[] {
  return snapshot.results.flatMap(({ environment, migrations, qa }) => [
    ...migrations.map((migration) => `[${environment}] ${migration.version}_${migration.name} ${migration.outcome} in ${migration.durationMs} ms`),
    ...(qa ? [`[${environment}] QA ${qa.passed ? 'passed' : 'failed'} in ${qa.durationMs} ms`] : []),
  ]);
}

function stageLine(snapshot: PipelineStatus): string {
  return snapshot.summary ? `${snapshot.stage}: ${snapshot.summary}` : describeProgress(snapshot);
}
