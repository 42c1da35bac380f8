import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ChangeRequestError, parseChangeRequest } from '../../core/change-request';
import { checkChangeRequestText, checksumOfText, readChangeRequestFile } from '../../core/change-request-file';

const FILE = 'cr.yaml';
const SEED_000 = fileURLToPath(new URL('../../examples/change-requests/000-drop-premature-fk.yaml', import.meta.url));
const SEED_003 = fileURLToPath(new URL('../../examples/change-requests/003-remove-fk-with-rollback-plan.yaml', import.meta.url));

const VALID = `id: cr-test-1
title: Drop a premature foreign key
criticality: C2
requestedBy: msmiley
environments: [staging, production]
steps:
  - id: drop-fk
    lockTables: [parents, children]
    statementTimeout: 1s
    sql: |
      ALTER TABLE children
        DROP CONSTRAINT IF EXISTS fk_children_parents;
  - id: fk-gone
    check: SELECT 1 FROM pg_constraint WHERE conname = 'fk_children_parents'
    expect: { rows: 0 }
rollback:
  - id: readd
    sql: ALTER TABLE children ADD CONSTRAINT fk_children_parents FOREIGN KEY (parent_id) REFERENCES parents (id) NOT VALID;
`;

/** Every problem the file has, as the CLI prints them. */
async function problemsOf(text: string): Promise<string[]> {
  try {
    await checkChangeRequestText(text, FILE);
  } catch (error) {
    if (error instanceof ChangeRequestError) return error.problems;
    throw error;
  }
  return [];
}

describe('change request files', () => {
  it('parses a valid CR into steps with their lines and settings', async () => {
    const parsed = await checkChangeRequestText(VALID, FILE);
    const cr = parsed.changeRequest;
    expect(cr).toMatchObject({ id: 'cr-test-1', criticality: 'C2', requestedBy: 'msmiley', environments: ['staging', 'production'] });
    expect(cr.steps.map((step) => `${step.kind}:${step.id}@${step.line}`)).toEqual(['sql:drop-fk@7', 'check:fk-gone@13']);
    const drop = cr.steps[0];
    expect(drop.kind === 'sql' && { sqlLine: drop.sqlLine, lockTables: drop.lockTables, statementTimeoutMs: drop.statementTimeoutMs, transaction: drop.transaction }).toEqual({
      sqlLine: 11,
      lockTables: ['parents', 'children'],
      statementTimeoutMs: 1000,
      transaction: true,
    });
    expect(cr.steps[1]).toMatchObject({ kind: 'check', expect: { rows: { op: '=', count: 0 } }, onFail: 'stop' });
    expect(cr.rollback.map((step) => step.id)).toEqual(['readd']);
    expect(parsed.checksum).toBe(checksumOfText(VALID));
    expect(parsed.checksum).toMatch(/^[0-9a-f]{64}$/);
  });

  it('changes the checksum with any edit, even whitespace', () => {
    expect(checksumOfText(VALID)).not.toBe(checksumOfText(`${VALID}\n`));
  });

  it('reads both seed examples', async () => {
    const drop = await readChangeRequestFile(SEED_000);
    expect(drop.changeRequest.lockRetry.statementTimeoutMs).toBe(1000);
    expect(drop.changeRequest.steps[0]).toMatchObject({ kind: 'sql', lockTables: ['ci_runners_e59bb2812d', 'ci_runner_machines'] });
    const remove = await readChangeRequestFile(SEED_003);
    expect(remove.changeRequest.rollback.map((step) => `${step.kind}:${step.id}${step.when ? `?${step.when.outcome}:${step.when.check}` : ''}`)).toEqual([
      'sql:add-fk-not-valid',
      'check:consistent',
      'approval:approve-orphan-delete?failed:consistent',
      'sql:delete-orphans?failed:consistent',
      'sql:validate-fk',
      'check:fk-valid',
    ]);
    expect(remove.changeRequest.rollback[5]).toMatchObject({ expect: { value: 'true' } });
    expect(readFileSync(SEED_003, 'utf8')).toBe(remove.content);
  });

  it('reads row expectations written as comparisons', () => {
    const cr = parseChangeRequest(VALID.replace('expect: { rows: 0 }', 'expect: { rows: ">=3" }'), FILE);
    expect(cr.steps[1]).toMatchObject({ expect: { rows: { op: '>=', count: 3 } } });
  });

  // Each invalid file: the edit that breaks it, and the exact problem reported (line, field, fix).
  const INVALID: [string, string, string][] = [
    ['unknown criticality', VALID.replace('criticality: C2', 'criticality: C5'), 'line 3: criticality: one of C1, C2, C3, C4'],
    ['missing requester', VALID.replace('requestedBy: msmiley\n', ''), 'requestedBy: missing: add it'],
    ['misspelt key', VALID.replace('statementTimeout: 1s', 'statmentTimeout: 1s'), 'line 9: steps.0.statmentTimeout: unknown key (check its spelling)'],
    ['two kinds in one step', VALID.replace('    expect: { rows: 0 }', '    expect: { rows: 0 }\n    sql: SELECT 1'), 'line 13: steps.1: a step has exactly one of sql, check or approval (found sql and check)'],
    ['no kind', VALID.replace("    check: SELECT 1 FROM pg_constraint WHERE conname = 'fk_children_parents'\n", ''), 'line 13: steps.1: a step has exactly one of sql, check or approval (found none)'],
    ['bad duration', VALID.replace('statementTimeout: 1s', 'statementTimeout: 1 second'), 'line 9: steps.0.statementTimeout: expected a duration such as 200ms, 1s, 15m'],
    ['SQL syntax error on its own line', VALID.replace('fk_children_parents;', 'fk_children_parents,;'), 'line 12: steps.drop-fk.sql: syntax error at or near ";"'],
    ['check that writes', VALID.replace("check: SELECT 1 FROM pg_constraint WHERE conname = 'fk_children_parents'", 'check: DELETE FROM children'), 'line 14: steps.fk-gone.check: a check is exactly one read-only query (SELECT, WITH … SELECT or VALUES); found DeleteStmt'],
    ['duplicate step id', VALID.replace('id: fk-gone', 'id: drop-fk'), 'line 13: steps.drop-fk: duplicate step id "drop-fk" (first at line 7)'],
    ['when names a later check', VALID.replace('  - id: drop-fk\n', '  - id: drop-fk\n    when: { failed: fk-gone }\n'), 'line 7: steps.drop-fk: when: no check "fk-gone" before this step in steps'],
    ['when names an sql step', VALID.replace("  - id: fk-gone\n", "  - id: fk-gone\n    when: { passed: drop-fk }\n"), 'line 13: steps.fk-gone: when: "drop-fk" is a sql step; when names a check step'],
    ['BEGIN inside a step', VALID.replace('    sql: |\n      ALTER', '    sql: |\n      BEGIN;\n      ALTER'), 'line 11: steps.drop-fk.sql: remove BEGIN/COMMIT: dbchange wraps the step in its own transaction (or set transaction: false)'],
    ['CONCURRENTLY in a transaction', VALID.replace('ALTER TABLE children\n        DROP CONSTRAINT IF EXISTS fk_children_parents;', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON children (parent_id);'), 'line 11: steps.drop-fk.sql: this SQL cannot run inside a transaction (e.g. CREATE INDEX CONCURRENTLY): set transaction: false and write it idempotently (IF NOT EXISTS)'],
    ['duplicate environment', VALID.replace('[staging, production]', '[staging, staging]'), 'line 5: environments.1: "staging" is listed twice'],
    ['bad row expectation', VALID.replace('expect: { rows: 0 }', 'expect: { rows: "some" }'), 'line 15: steps.1.expect'],
    ['YAML syntax error', VALID.replace('title: Drop a premature foreign key', 'title: [unclosed'), 'line 3: Flow sequence in block collection must be sufficiently indented and end with a ]'],
    ['no steps', VALID.slice(0, VALID.indexOf('steps:')).concat('steps: []\n'), 'line 6: steps: list at least one step'],
    ['lock tables without a transaction', VALID.replace('    statementTimeout: 1s\n', '    statementTimeout: 1s\n    transaction: false\n'), 'line 7: steps.drop-fk.lockTables: table locks last only as long as a transaction'],
  ];

  it.each(INVALID)('refuses %s, naming the line and field', async (_name, text, expected) => {
    const problems = await problemsOf(text);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.join('\n')).toContain(expected);
  });

  it('reports every problem of a file at once', async () => {
    const text = VALID.replace('criticality: C2', 'criticality: high').replace('statementTimeout: 1s', 'statementTimeout: soon');
    const problems = await problemsOf(text);
    expect(problems).toEqual([
      'line 3: criticality: one of C1, C2, C3, C4',
      'line 9: steps.0.statementTimeout: expected a duration such as 200ms, 1s, 15m',
    ]);
  });

  it('names the file in the error message', async () => {
    await expect(readChangeRequestFile('/nonexistent/cr.yaml')).rejects.toThrow(/invalid change request \/nonexistent\/cr\.yaml:\n {2}- cannot read the file/);
  });
});
