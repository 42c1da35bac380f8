#!/usr/bin/env bash
# `npm run bench`: set-up (packages, Temporal CLI, compiled code), PostgreSQL up, then every benchmark in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
bash scripts/setup.sh
bash scripts/postgres.sh
command -v psql >/dev/null || { echo "dbchange bench: psql is needed for the psql comparisons (apt-get install postgresql-client)" >&2; exit 1; }
node dist/bench/run.js
echo "dbchange bench: finished in $(( $(date +%s) - started ))s" >&2
