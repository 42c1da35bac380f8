#!/usr/bin/env bash
# Everything a fresh clone needs: npm packages, the Temporal CLI, compiled code. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "dbchange setup: installing npm packages" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

bash scripts/temporal-cli.sh >/dev/null

echo "dbchange setup: compiling TypeScript" >&2
npx --no-install tsc -p tsconfig.json
