#!/usr/bin/env bash
# Everything a fresh clone needs: npm packages, the Temporal CLI, compiled code. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "dbchange setup: installing npm packages" >&2
  # `npm install` follows the lock file and, unlike `npm ci`, keeps what node_modules already holds.
  npm install --no-audit --no-fund --loglevel=error >&2
fi

# The Temporal UI test drives Debian's Chromium through playwright-core; CI runs this script as root.
if [[ ! -x /usr/bin/chromium ]]; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "dbchange setup: installing chromium for the Temporal UI test" >&2
    apt-get install -y -q chromium >&2 || { apt-get update -q >&2 && apt-get install -y -q chromium >&2; }
  else
    echo "dbchange setup: /usr/bin/chromium is missing; the Temporal UI test needs it: sudo apt-get install chromium" >&2
  fi
fi

bash scripts/temporal-cli.sh >/dev/null

echo "dbchange setup: compiling TypeScript and bundling the workflows" >&2
npm run --silent build
