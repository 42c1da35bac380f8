import { describe, expect, it } from 'vitest';
import { parseConfig, requireDatabaseUrl } from '../../core/config';
import { NEW_PROJECT_FOLDERS, newProjectConfigText } from '../../core/project-template';

const FILE = '/project/dbchange.yaml';

describe('dbchange init: the dbchange.yaml it writes', () => {
  it("loads with the project's config loader: one environment on $DATABASE_URL, both folders, the approver", () => {
    const config = parseConfig(newProjectConfigText('alice'), FILE, { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/app' }, '/project');
    expect(config.migrations).toMatchObject({ regular: '/project/db/migrate', postDeploy: '/project/db/post_migrate' });
    expect(config.environments.map((environment) => environment.name)).toEqual(['development']);
    expect(config.environments[0].databases.map((target) => target.url)).toEqual(['postgres://postgres@127.0.0.1:5432/app']);
    expect(config.environments[0].approval).toBeUndefined();
    expect(config.approvers).toEqual({ alice: ['release-manager'] });
  });

  it('loads without DATABASE_URL too, and the worker then names the variable it needs', () => {
    const config = parseConfig(newProjectConfigText('alice'), FILE, {}, '/project');
    expect(() => requireDatabaseUrl(config.environments[0].databases[0])).toThrow(/databaseUrl: \$\{DATABASE_URL\} is not set/);
  });

  it('keeps an approver whose login name is YAML syntax as that exact name', () => {
    for (const name of ['dev:ops', '123', 'true', 'o\'brien', '#root']) {
      expect(Object.keys(parseConfig(newProjectConfigText(name), FILE, {}, '/project').approvers)).toEqual([name]);
    }
  });

  it('names the folders it creates', () => {
    const text = newProjectConfigText('alice');
    expect(text).toContain(`regular: ${NEW_PROJECT_FOLDERS.regular} `);
    expect(text).toContain(`postDeploy: ${NEW_PROJECT_FOLDERS.postDeploy} `);
    expect(text).toContain('databaseUrl: ${DATABASE_URL}');
  });
});
