// Registers dbchange's search attributes on a namespace through the operator service; safe to run again.
import type { ConnectionLike } from '@temporalio/client';
import { SearchAttributeType } from '@temporalio/common';
// The SDK's own mapping from search attribute types to the server's enum (what its test server uses to register them).
import { encodeSearchAttributeIndexedValueType as indexedValueType } from '@temporalio/common/lib/search-attributes';
import { ALL_SEARCH_ATTRIBUTES } from '../core/search-attributes';

type IndexedValueType = NonNullable<ReturnType<typeof indexedValueType>>;

export interface SearchAttributeSetup {
  namespace: string;
  added: string[];
  alreadyPresent: string[];
}

export class SearchAttributeConflictError extends Error {}

export async function registerSearchAttributes(connection: Pick<ConnectionLike, 'operatorService'>, namespace: string): Promise<SearchAttributeSetup> {
  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
  const existing = customAttributes ?? {};
  const missing: Record<string, IndexedValueType> = {};
  const alreadyPresent: string[] = [];
  const conflicts: string[] = [];
  for (const key of ALL_SEARCH_ATTRIBUTES) {
    const wanted = indexedValueType(key.type)!;
    const found = existing[key.name];
    if (found === undefined || found === null) missing[key.name] = wanted;
    else if (found === wanted) alreadyPresent.push(key.name);
    else conflicts.push(`${key.name} is ${typeName(found)} on the server, dbchange needs ${key.type}`);
  }
  if (conflicts.length > 0) {
    // A search attribute's type cannot be changed in place; a person has to decide what happens to the old one.
    throw new SearchAttributeConflictError(
      `namespace ${namespace}: ${conflicts.join('; ')}; remove it with \`temporal operator search-attribute remove --name NAME\` and run \`dbchange setup\` again`,
    );
  }
  if (Object.keys(missing).length > 0) await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
  return { namespace, added: Object.keys(missing), alreadyPresent };
}

function typeName(value: IndexedValueType): string {
  return Object.values(SearchAttributeType).find((type) => indexedValueType(type) === value) ?? `type ${value}`;
}
