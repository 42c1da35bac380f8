import { describe, expect, it } from 'vitest';
import { incidentWorkflowId } from '../../core/incident';
import { pipelineWorkflowId } from '../../core/pipeline';
import { devServerSearchAttributeArgs } from '../../core/search-attributes';

describe('workflow ids', () => {
  it('names one pipeline per set of environments, joined by +', () => {
    expect(pipelineWorkflowId(['staging', 'production'])).toBe('pdm-staging+production');
    expect(pipelineWorkflowId(['staging'])).toBe('pdm-staging');
  });

  it('names an incident workflow after the incident', () => {
    expect(incidentWorkflowId('2024-17')).toBe('incident-2024-17');
  });
});

describe('devServerSearchAttributeArgs', () => {
  it('registers every dbchange search attribute with its dev-server type', () => {
    expect(devServerSearchAttributeArgs()).toEqual([
      '--search-attribute', 'DbChangeKind=Keyword',
      '--search-attribute', 'DbChangeStatus=Keyword',
      '--search-attribute', 'DbChangeEnvironment=Keyword',
      '--search-attribute', 'DbChangeCriticality=Keyword',
      '--search-attribute', 'DbChangeSeverity=Int',
      '--search-attribute', 'DbChangePackage=Keyword',
    ]);
  });
});
