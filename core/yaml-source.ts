// YAML files people write by hand (dbchange.yaml, change requests): parsed with line numbers, so every
// problem can name the line and key it is about.
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { parseDuration } from './duration';

export interface YamlSource {
  /** The document as plain data; undefined for an empty file. */
  data: unknown;
  /** Syntax errors, each as "line N: message"; when there are any, `data` is not to be trusted. */
  syntaxErrors: string[];
  /** "line N" of the value at `path`, or of its nearest parent that has one. */
  lineOf(path: PropertyKey[]): string;
  /** "line N" of the key `key` inside the map at `parent` (for unknown keys, which have no value path of their own). */
  lineOfKey(parent: PropertyKey[], key: string): string;
  /** The line number (1-based) of the value at `path`, for messages that point into a multi-line value. */
  lineNumberOf(path: PropertyKey[]): number | undefined;
  /** The line where the text of the scalar at `path` begins: for a block scalar (`sql: |`), the line after the key. */
  textStartLine(path: PropertyKey[]): number | undefined;
}

type NodeWithRange = { range?: [number, number, number]; type?: string };
type MapNode = { items?: { key?: { value?: unknown; range?: [number, number] } }[] };

export function readYamlSource(text: string): YamlSource {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false });
  const line = (offset: number) => lineCounter.linePos(offset).line;
  const lineNumberOf = (path: PropertyKey[]): number | undefined => {
    for (let depth = path.length; depth >= 0; depth--) {
      const node = document.getIn(path.slice(0, depth) as (string | number)[], true) as NodeWithRange | undefined;
      if (node?.range) return line(node.range[0]);
    }
    return undefined;
  };
  const lineOf = (path: PropertyKey[]): string => {
    const found = lineNumberOf(path);
    return found === undefined ? 'top level' : `line ${found}`;
  };
  return {
    data: document.errors.length > 0 ? undefined : document.toJS(),
    syntaxErrors: document.errors.map((error) => `line ${line(error.pos[0])}: ${error.message.split('\n')[0]}`),
    lineOf,
    lineNumberOf,
    textStartLine(path) {
      const node = document.getIn(path as (string | number)[], true) as NodeWithRange | undefined;
      if (!node?.range) return lineNumberOf(path);
      const isBlock = node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED';
      return line(node.range[0]) + (isBlock ? 1 : 0);
    },
    lineOfKey(parent, key) {
      const map = document.getIn(parent as (string | number)[], true) as MapNode | undefined;
      const range = map?.items?.find((pair) => pair.key?.value === key)?.key?.range;
      return range ? `line ${line(range[0])}` : lineOf([...parent, key]);
    },
  };
}

/** zod's issues as "line N: path.to.key: message"; an unknown key is named with its own line. */
export function describeSchemaIssues(issues: z.core.$ZodIssue[], source: YamlSource, pathPrefix: PropertyKey[] = []): string[] {
  const problems: string[] = [];
  for (const issue of issues) {
    const path = [...pathPrefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const unknown of issue.keys) {
        problems.push(`${source.lineOfKey(path, unknown)}: ${[...path, unknown].join('.')}: unknown key (check its spelling)`);
      }
    } else if (issue.code === 'invalid_key') {
      // A record's key that fails its own rule: the rule's message says what a key may be.
      problems.push(`${source.lineOfKey(path.slice(0, -1), String(path[path.length - 1]))}: ${path.join('.')}: ${issue.issues[0]?.message ?? issue.message}`);
    } else {
      const missing = issue.code === 'invalid_type' && /received undefined$/.test(issue.message);
      problems.push(`${source.lineOf(path)}: ${path.join('.') || '(top level)'}: ${missing ? 'missing: add it' : issue.message}`);
    }
  }
  return problems;
}

/** A duration written as text (`200ms`, `15m`, `24h`); `examples` are the ones the message suggests for this key. */
export function durationText(examples: string) {
  return z.string().refine((text) => parseDuration(text) !== undefined, { message: `expected a duration such as ${examples}` });
}
