// Folds the drift of what PostgreSQL copies to partitions (indexes, constraints, triggers, columns) into the
// parent's difference: one create index on 64 partitions is one fact, not 65 lines.
import type { CatalogDifference } from './drift';

/** Each side's partition objects, keyed by catalog entry, naming the parent object PostgreSQL copied them from. */
export interface PartitionParents {
  first: Readonly<Record<string, string>>;
  second: Readonly<Record<string, string>>;
}

/**
 * Differences of partition objects that mirror their parent's difference are folded into it (`partitions` lists
 * them); a partition object that differs in any other way keeps its own line.
 */
export function foldPartitionDifferences(differences: CatalogDifference[], parents: PartitionParents): CatalogDifference[] {
  const byObject = new Map(differences.map((difference) => [difference.object, difference]));
  const roots = new Map<CatalogDifference, CatalogDifference>();
  const rootOf = (difference: CatalogDifference): CatalogDifference => {
    let root = roots.get(difference);
    if (root) return root;
    const parentObject = parents.first[difference.object] ?? parents.second[difference.object];
    const parent = parentObject === undefined ? undefined : byObject.get(parentObject);
    root = parent && mirrorsParent(difference, parent) ? rootOf(parent) : difference;
    roots.set(difference, root);
    return root;
  };
  const folded = new Map<CatalogDifference, string[]>();
  for (const difference of differences) {
    const root = rootOf(difference);
    if (root !== difference) folded.set(root, [...(folded.get(root) ?? []), difference.object]);
  }
  return differences.filter((difference) => rootOf(difference) === difference).map((difference) => (folded.has(difference) ? { ...difference, partitions: folded.get(difference) } : difference));
}

/** On each side the partition's object exists exactly where the parent's does, and reads the same but for names. */
function mirrorsParent(child: CatalogDifference, parent: CatalogDifference): boolean {
  const kind = child.object.slice(0, child.object.indexOf(' '));
  const same = (a: string | undefined, b: string | undefined) => (a === undefined ? b === undefined : b !== undefined && withoutNames(kind, a) === withoutNames(kind, b));
  return same(child.first, parent.first) && same(child.second, parent.second);
}

/**
 * A definition without the names that always differ between a parent's object and a partition's copy: the index's
 * own name and table, the trigger's table, the referenced partition of a key that references a partitioned table.
 * A name these patterns miss (quoted with spaces) only keeps the partition on a line of its own.
 */
function withoutNames(kind: string, definition: string): string {
  switch (kind) {
    case 'index':
      return definition.replace(/^CREATE (UNIQUE )?INDEX \S+ ON (?:ONLY )?\S+ /, 'CREATE $1INDEX ON ');
    case 'trigger':
      return definition.replace(/ ON \S+ /, ' ON ');
    case 'constraint':
      return definition.replace(/ REFERENCES \S+?\(/, ' REFERENCES (');
    default:
      return definition;
  }
}
