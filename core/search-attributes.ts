// dbchange's search attributes: registered on the server, set by workflows, filtered on in the UI.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const KIND = defineSearchAttributeKey('DbChangeKind', SearchAttributeType.KEYWORD);
export const STATUS = defineSearchAttributeKey('DbChangeStatus', SearchAttributeType.KEYWORD);
export const ENVIRONMENT = defineSearchAttributeKey('DbChangeEnvironment', SearchAttributeType.KEYWORD);
export const CRITICALITY = defineSearchAttributeKey('DbChangeCriticality', SearchAttributeType.KEYWORD);
export const SEVERITY = defineSearchAttributeKey('DbChangeSeverity', SearchAttributeType.INT);
export const PACKAGE = defineSearchAttributeKey('DbChangePackage', SearchAttributeType.KEYWORD);

export const ALL_SEARCH_ATTRIBUTES = [KIND, STATUS, ENVIRONMENT, CRITICALITY, SEVERITY, PACKAGE];

/** `name=Type` pairs for `temporal server start-dev --search-attribute`. */
export function devServerSearchAttributeArgs(): string[] {
  const typeName: Record<string, string> = { KEYWORD: 'Keyword', INT: 'Int' };
  return ALL_SEARCH_ATTRIBUTES.flatMap((key) => ['--search-attribute', `${key.name}=${typeName[key.type] ?? key.type}`]);
}
