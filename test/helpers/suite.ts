// The per-file set-up most integration tests share: one stack, throwaway projects, the workflows to replay.
import { afterAll, beforeAll } from 'vitest';
import { createProject, type ProjectSpec, type TestProject } from './project';
import { pipelineStatus, startPipeline } from '../../cli/pipeline-client';
import type { PipelineStage, PipelineStatus } from '../../core/pipeline';
import { createStack, eventually, type Stack } from './stack';

export interface Suite {
  /** Ready inside tests (created in beforeAll). */
  stack: Stack;
  /** Every workflow a test started, for the file's closing replay test. */
  workflowIds: string[];
  /** A project cleaned up after the file. */
  project(prefix: string, spec: ProjectSpec): Promise<TestProject>;
  /** A worker for `project` on a task queue of its own, and the pipeline started on it (recorded for replay). */
  startPipeline(project: TestProject, requestedBy?: string): Promise<PipelineHandle>;
  /** Waits until the pipeline's status reaches `stage`, and returns that snapshot. */
  waitForStage(workflowId: string, stage: PipelineStage): Promise<PipelineStatus>;
}

type PipelineHandle = Awaited<ReturnType<typeof startPipeline>>;

export function useSuite(namespace?: string): Suite {
  const projects: TestProject[] = [];
  const suite: Suite = {
    stack: undefined as unknown as Stack,
    workflowIds: [],
    async project(prefix, spec) {
      const project = await createProject(prefix, spec);
      projects.push(project);
      return project;
    },
    async startPipeline(project, requestedBy = 'dave') {
      const taskQueue = suite.stack.newTaskQueue();
      await suite.stack.startWorker(project.config, taskQueue);
      const handle = await startPipeline(suite.stack.client, project.config, { requestedBy, taskQueue });
      suite.workflowIds.push(handle.workflowId);
      return handle;
    },
    waitForStage(workflowId, stage) {
      return eventually(async () => {
        const snapshot = await pipelineStatus(suite.stack.client, workflowId);
        return snapshot.stage === stage && snapshot;
      }, `${workflowId} to reach ${stage}`);
    },
  };
  beforeAll(async () => {
    suite.stack = await createStack(namespace);
  });
  afterAll(async () => {
    await suite.stack?.close();
    await Promise.all(projects.map((project) => project.cleanup()));
  });
  return suite;
}
