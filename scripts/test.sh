#!/usr/bin/env bash
# The test command: set-up, lint, type checks, then every test on a real Temporal dev server and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
bash scripts/setup.sh
bash scripts/postgres.sh
# The cluster tests (test/cluster) need temporal-server; its build is cached in .tools/bin and Go's build cache.
bash scripts/temporal-cluster.sh build
echo "dbchange test: lint and type checks" >&2
npx --no-install eslint .
npx --no-install tsc -p tsconfig.test.json
npx --no-install vitest run "$@"
echo "dbchange test: finished in $(( $(date +%s) - started ))s" >&2
