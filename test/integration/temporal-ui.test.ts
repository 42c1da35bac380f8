import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipelineStatus, startPipeline } from '../../cli/pipeline-client';
import { isTextVisible, openBrowser, waitForText, type HeadlessBrowser } from '../helpers/browser';
import { startOwnDevServer, type OwnDevServer } from '../helpers/dev-servers';
import { assertBuilt, runCli, type CliTarget } from '../helpers/processes';
import { createProject, migration, type TestProject } from '../helpers/project';
import { createStack, eventually, replayWorkflows, type Stack } from '../helpers/stack';

const WORKFLOW_ID = 'pdm-ui-staging+ui-production';
const WAITING_FOR = 'waiting for approval by release-manager before ui-production';

describe('the pipeline in the Temporal Web UI, in a real browser', () => {
  let server: OwnDevServer;
  let stack: Stack;
  let project: TestProject;
  let browser: HeadlessBrowser;
  let target: CliTarget;

  beforeAll(async () => {
    assertBuilt();
    server = await startOwnDevServer();
    stack = await createStack('default', server.address);
    project = await createProject('ui', {
      environments: [{ name: 'ui-staging' }, { name: 'ui-production', approvalRoles: ['release-manager'] }],
      migrations: { '20240801000001_create_invoices.sql': migration('CREATE TABLE ui_invoices (id bigint PRIMARY KEY);') },
    });
    target = { address: server.address, taskQueue: stack.newTaskQueue(), configPath: project.configPath };
    await stack.startWorker(project.config, target.taskQueue);
    browser = await openBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.close();
    await server?.stop();
    await project?.cleanup();
  });

  it('lists the waiting pipeline under a DbChangeStatus filter, shows its summary and what it waits for, and its completion after a CLI approval', { timeout: 120_000 }, async () => {
    await startPipeline(stack.client, project.config, { requestedBy: 'dave', packageVersion: '18.2.0', taskQueue: target.taskQueue });
    await eventually(async () => (await pipelineStatus(stack.client, WORKFLOW_ID)).stage === 'waiting-approval', 'the approval gate');
    const { page } = browser;

    const listUrl = `${server.uiUrl}/namespaces/default/workflows?query=${encodeURIComponent('DbChangeStatus="waiting-approval"')}`;
    // Visibility is eventually consistent: reload until the list shows the pipeline.
    await eventually(async () => {
      await page.goto(listUrl);
      await page.getByRole('link', { name: WORKFLOW_ID }).first().waitFor({ timeout: 3_000 });
      return true;
    }, 'the pipeline in the filtered workflow list', 45_000, 500);
    await browser.screenshot('01-workflow-list-waiting-approval');

    await page.getByRole('link', { name: WORKFLOW_ID }).first().click();
    await page.getByText('User Metadata', { exact: true }).first().click();
    await waitForText(page, 'post-deploy migrations for 18.2.0: ui-staging → ui-production');
    await waitForText(page, 'requested by dave');
    await waitForText(page, WAITING_FOR);
    await browser.screenshot('02-workflow-waiting-for-approval');

    const approved = await runCli(target, ['approve', WORKFLOW_ID, '--as', 'alice', '--role', 'release-manager', '--comment', 'checked in the UI']);
    expect(approved, approved.stderr).toMatchObject({ code: 0, stdout: 'accepted: approved ui-production as release-manager\n' });
    await stack.client.workflow.getHandle(WORKFLOW_ID).result();

    // The UI asks for current details when the page loads (or on R): a reload shows the new state.
    await page.reload();
    await waitForText(page, 'complete on ui-staging, ui-production');
    await waitForText(page, 'Completed');
    expect(await isTextVisible(page, WAITING_FOR)).toBe(false);
    await browser.screenshot('03-workflow-complete');

    await eventually(async () => {
      await page.goto(`${server.uiUrl}/namespaces/default/workflows?query=${encodeURIComponent('DbChangeStatus="complete"')}`);
      await page.getByRole('link', { name: WORKFLOW_ID }).first().waitFor({ timeout: 3_000 });
      return true;
    }, 'the pipeline under DbChangeStatus="complete"', 45_000, 500);
    await browser.screenshot('04-workflow-list-complete');
  });

  it('replays the history it produced without nondeterminism', async () => {
    expect(await replayWorkflows(stack, [WORKFLOW_ID])).toBe(1);
  });
});
