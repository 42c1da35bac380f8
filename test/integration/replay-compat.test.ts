// Replay compatibility with the previous release: workflows it started that are still in flight when the
// worker is upgraded (parked at an approval, blocked, in a rollback window) must replay on the current
// workflow code without nondeterminism. Each fixture in test/fixtures/histories is one such history,
// recorded on the real stack by the release's own code; any command mismatch fails here with
// DeterminismViolationError, and the fix is a patched() path in the workflow, never an edited fixture.
//
// The fixtures come from releases d243937 (unprefixed), 4d68693 and ff732be (prefixed: recorded into a scratch
// folder and renamed; ff732be's two with `-t` to record only those). To regenerate them from a release commit (scripts/record-histories.mjs
// has the same steps at its top):
//   git worktree add /tmp/old-dbchange <release-commit>
//   ln -s "$PWD/node_modules" /tmp/old-dbchange/node_modules; ln -s "$PWD/.tools" /tmp/old-dbchange/.tools
//   cp scripts/record-histories.mjs /tmp/old-dbchange/test/integration/record-histories.test.ts
//   (cd /tmp/old-dbchange && npm run --silent build && HISTORIES_OUT="$PWD/test/fixtures/histories" npx vitest run test/integration/record-histories.test.ts)
//   git worktree remove --force /tmp/old-dbchange && git worktree prune
// The recorder refuses to write a history holding a database URL or password. JSON replay needs protobufjs as a
// direct dependency (see package.json).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkflowBundle } from '@temporalio/worker';
import { beforeAll, describe, expect, it } from 'vitest';
import { WORKFLOWS_PATH } from '../../worker/worker';

const HISTORIES = fileURLToPath(new URL('../fixtures/histories', import.meta.url));

/** What each fixture captures; a fixture missing here (or a name here without a file) fails the test. */
const FIXTURES: Record<string, string> = {
  // Pipeline staging → production: 3 migrations applied on staging, parked at production's approval gate.
  'pipeline-waiting-approval': 'parked at the production approval',
  // Pipeline whose second migration references a missing table (42P01): blocked on staging, waiting for resolve.
  'pipeline-blocked': 'blocked waiting for resolve',
  // Same pipeline as the first, approved by alice and completed through production: a full, closed history.
  'pipeline-approved-complete': 'approved and complete',
  // Seed 003 (C3) change request on staging and production, parked waiting for its reviewer's approval.
  'cr-waiting-approval': 'change request waiting for approval',
  // Seed 003 approved and applied on both environments, waiting in its 24h rollback window.
  'cr-rollback-window': 'change request in its rollback window',
};
// The same five states recorded again from 4d68693 (the release before backfills, the dashboard's fleetTargets query
// and the backfill wait), whose workflows may be in flight when this code is deployed.
for (const [name, what] of Object.entries({ ...FIXTURES })) FIXTURES[`4d68693-${name}`] = `${what}, release 4d68693`;
// From ff732be: a change under approvals.signatures: required whose unsigned `cr rollback` was accepted then (the
// rollback's signature is checked since); it must replay as it ran (scripts/record-histories.mjs, cr-unsigned-rollback).
FIXTURES['ff732be-cr-unsigned-rollback'] = 'change request rolled back unsigned under required signatures, release ff732be';
// From ff732be: a backfill under required signatures paused, resumed and cancelled by unsigned decisions it accepted then.
FIXTURES['ff732be-backfill-unsigned-controls'] = 'backfill paused, resumed and cancelled unsigned under required signatures, release ff732be';

describe('replay compatibility with histories of the previous release', () => {
  let workflowBundle: WorkflowBundle;
  beforeAll(async () => {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
    // The current workflow source, bundled as the test stack does (test/helpers/stack.ts).
    workflowBundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') });
  });

  const files = readdirSync(HISTORIES).filter((file) => file.endsWith('.json')).sort();

  it('has a fixture for every state listed, and lists every fixture', () => {
    expect(files.map((file) => file.replace(/\.json$/, ''))).toEqual(Object.keys(FIXTURES).sort());
  });

  it('fixtures hold no database URL', () => {
    for (const file of files) {
      const text = readFileSync(join(HISTORIES, file), 'utf8');
      // Payloads are base64 in history JSON: search them decoded too.
      const payloads = [...text.matchAll(/"data":\s*"([A-Za-z0-9+/=]+)"/g)].map((match) => Buffer.from(match[1], 'base64').toString('utf8'));
      for (const part of [text, ...payloads]) expect(part, file).not.toMatch(/postgres(ql)?:\/\//);
    }
  });

  for (const file of files) {
    const name = file.replace(/\.json$/, '');
    it(`replays ${name} (${FIXTURES[name] ?? 'unlisted'}) on the current workflow code`, async () => {
      const history = historyFromJSON(JSON.parse(readFileSync(join(HISTORIES, file), 'utf8')));
      // Throws DeterminismViolationError on a command mismatch, and fails on any other workflow task failure.
      await Worker.runReplayHistory({ workflowBundle }, history, name);
    });
  }
});
