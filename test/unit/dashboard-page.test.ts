import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config';
import { ago, renderDashboard, type DashboardData } from '../../dashboard/page';
import { hideSecrets, secretsOf } from '../../dashboard/secrets';

const NOW = new Date('2024-08-02T12:00:00Z');

function data(overrides: Partial<DashboardData> = {}): DashboardData {
  return {
    namespace: 'default',
    taskQueue: 'dbchange',
    temporalUiUrl: 'http://localhost:8233',
    generatedAt: NOW,
    databases: [],
    fleets: [],
    changes: [],
    moreChanges: 0,
    ...overrides,
  };
}

describe('the dashboard page', () => {
  it('escapes every value it shows, so a migration or error text cannot add markup', () => {
    const page = renderDashboard(
      data({
        databases: [{ address: 'staging', environment: 'staging', database: 'main', pending: [{ version: '20240801000001', name: 'x', fileName: '20240801000001_<script>alert(1)</script>.sql' }], edited: [] }],
        changes: [{ workflowId: 'cr-"quoted"', kind: 'cr', title: 'C4 <b>bold</b>', stage: 'blocked', startedAt: NOW.toISOString(), waitingFor: 'x', action: { decision: 'resolve', reason: 'ERROR: a < b & c', commands: ['dbchange resolve cr-"quoted" --as USER --action retry|abort'] } }],
      }),
    );
    expect(page).not.toContain('<script>');
    expect(page).not.toContain('<b>bold</b>');
    expect(page).toContain('20240801000001_&#60;script&#62;alert(1)&#60;/script&#62;.sql');
    expect(page).toContain('ERROR: a &#60; b &#38; c');
    expect(page).toContain('href="http://localhost:8233/namespaces/default/workflows/cr-%22quoted%22"');
  });

  it('loads nothing from elsewhere and reloads itself', () => {
    const page = renderDashboard(data());
    expect(page).toContain('<meta http-equiv="refresh" content="15">');
    expect(page).not.toMatch(/<script|<link|@import|url\(|src=/i);
    expect(page).toContain('Nothing waits for a decision.');
  });

  it('cuts configured database URLs and their passwords out of any text', () => {
    const config = parseConfig(
      ['migrations: { postDeploy: db }', 'environments:', '  - name: production', '    databaseUrl: ${PRODUCTION_URL}'].join('\n'),
      'dbchange.yaml',
      { PRODUCTION_URL: 'postgres://app:s3cr%40t@db.internal:5432/app' },
      '/tmp',
    );
    const secrets = secretsOf(config);
    expect(hideSecrets('failed at postgres://app:s3cr%40t@db.internal:5432/app with s3cr@t', secrets)).toBe('failed at (hidden) with (hidden)');
  });

  it('says how long ago in the largest whole unit', () => {
    expect(ago(new Date('2024-08-02T11:59:30Z'), NOW)).toBe('30 s ago');
    expect(ago(new Date('2024-08-02T09:00:00Z'), NOW)).toBe('3 h ago');
    expect(ago(new Date('2024-07-30T12:00:00Z'), NOW)).toBe('3 d ago');
  });
});
