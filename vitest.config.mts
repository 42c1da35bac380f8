import { defineConfig } from 'vitest/config';

// Hides the clone's dist/ while it runs, which every other test that spawns the CLI needs: it runs after them, alone.
const INSTALLED_PACKAGE_TEST = 'test/integration/installed-package.test.ts';

export default defineConfig({
  test: {
    // One process per test file: the Temporal Runtime is installed once per process.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 90_000,
    hookTimeout: 120_000,
    reporters: process.env.CI ? ['verbose'] : ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'suite',
          include: ['test/**/*.test.ts'],
          exclude: [INSTALLED_PACKAGE_TEST],
          globalSetup: ['test/helpers/global-setup.ts'],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: { name: 'installed package', include: [INSTALLED_PACKAGE_TEST], sequence: { groupOrder: 1 } },
      },
    ],
  },
});
