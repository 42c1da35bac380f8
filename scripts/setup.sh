#!/usr/bin/env bash
# Everything a fresh clone needs: npm packages, the Temporal CLI, compiled code. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "dbchange setup: installing npm packages" >&2
  # `npm install`, not `npm ci`: the registry here lacks @swc/core's binaries for other platforms, so the
  # lock file cannot list them and `npm ci` refuses it; install still follows the lock file exactly.
  npm install --no-audit --no-fund --loglevel=error >&2
fi

bash scripts/temporal-cli.sh >/dev/null

echo "dbchange setup: compiling TypeScript" >&2
npx --no-install tsc -p tsconfig.json
