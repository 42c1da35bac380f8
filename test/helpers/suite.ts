// The per-file set-up most integration tests share: one stack, throwaway projects, the workflows to replay.
import { afterAll, beforeAll } from 'vitest';
import { createProject, type ProjectSpec, type TestProject } from './project';
import { createStack, type Stack } from './stack';

export interface Suite {
  /** Ready inside tests (created in beforeAll). */
  stack: Stack;
  /** Every workflow a test started, for the file's closing replay test. */
  workflowIds: string[];
  /** A project cleaned up after the file. */
  project(prefix: string, spec: ProjectSpec): Promise<TestProject>;
}

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
