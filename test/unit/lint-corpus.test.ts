import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { LintFinding, MigrationKind } from '../../core/lint-rules';
import { lintMigrationText } from '../../activities/lint';

// Each corpus file says what it must trigger (`-- expect: rule`), words its fix must hold (`-- expect-fix: text`),
// and, when not regular, its kind (`-- kind: post-deploy`).
const CORPUS = join(__dirname, '../fixtures/lint');

interface CorpusFile {
  name: string;
  text: string;
  kind: MigrationKind;
  expected?: string;
  expectedFix?: string;
}

function readCorpus(folder: 'unsafe' | 'safe'): CorpusFile[] {
  return readdirSync(join(CORPUS, folder))
    .filter((name) => name.endsWith('.sql'))
    .sort()
    .map((name) => {
      const text = readFileSync(join(CORPUS, folder, name), 'utf8');
      return {
        name,
        text,
        kind: /^-- kind: post-deploy$/m.test(text) ? 'post-deploy' : 'regular',
        expected: /^-- expect: ([a-z0-9-]+)$/m.exec(text)?.[1],
        expectedFix: /^-- expect-fix: (.+)$/m.exec(text)?.[1],
      };
    });
}

const unsafe = readCorpus('unsafe');
const safe = readCorpus('safe');
const flagged = { unsafeCaught: 0, safeFlagged: 0 };

describe('the lint corpus', () => {
  it('holds at least 20 unsafe migrations, each naming its rule, and at least 10 safe ones', () => {
    expect(unsafe.length).toBeGreaterThanOrEqual(20);
    expect(safe.length).toBeGreaterThanOrEqual(10);
    expect(unsafe.filter((file) => !file.expected).map((file) => file.name)).toEqual([]);
  });

  it.each(unsafe)('$name triggers the rule it names', async (file) => {
    const findings = await lintMigrationText(file.name, file.text, file.kind);
    const rules = findings.map((finding) => finding.rule);
    if (rules.includes(file.expected!)) flagged.unsafeCaught++;
    expect(rules).toContain(file.expected);
    const hit = findings.find((finding) => finding.rule === file.expected)!;
    // Every finding points at a real line of the file, and says how to fix it.
    expect(hit.line).toBeGreaterThan(0);
    expect(hit.line).toBeLessThanOrEqual(file.text.split('\n').length);
    expect(hit.fix).not.toBe('');
    if (file.expectedFix) expect(hit.fix).toContain(file.expectedFix);
  }, 20_000);

  it.each(safe)('$name triggers nothing', async (file) => {
    const findings: LintFinding[] = await lintMigrationText(file.name, file.text, file.kind);
    if (findings.length > 0) flagged.safeFlagged++;
    expect(findings).toEqual([]);
  }, 20_000);

  afterAll(() => {
    // Recall: unsafe files caught by their rule. Precision: of the files flagged, how many were unsafe.
    const recall = flagged.unsafeCaught / unsafe.length;
    const precision = flagged.unsafeCaught / Math.max(1, flagged.unsafeCaught + flagged.safeFlagged);
    process.stderr.write(`lint corpus: ${unsafe.length} unsafe, ${safe.length} safe; recall ${recall.toFixed(2)}, precision ${precision.toFixed(2)}\n`);
  });
});
