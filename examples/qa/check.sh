#!/usr/bin/env bash
# QA gate for the example app: runs the application's queries against the environment dbchange names.
set -euo pipefail
cd "$(dirname "$0")"

environment="${DBCHANGE_ENVIRONMENT:?dbchange sets DBCHANGE_ENVIRONMENT to the environment under test}"
prefix="$(tr 'a-z-' 'A-Z_' <<<"$environment")"
# The example's environments have a main and a ci database (examples/dbchange.yaml); the application uses both.
for database in main ci; do
  url_variable="${prefix}_${database^^}_DATABASE_URL"
  if [[ -z "${!url_variable:-}" ]]; then
    echo "QA: $url_variable is not set; export it where the dbchange worker runs" >&2
    exit 1
  fi
  if ! errors="$(psql "${!url_variable}" --no-psqlrc --quiet --set ON_ERROR_STOP=1 --file app-queries.sql 2>&1 >/dev/null)"; then
    echo "$errors" >&2
    # The last line is what the pipeline shows: make it the error, not psql's caret line.
    echo "QA failed on $environment/$database: $(grep -m1 'ERROR' <<<"$errors" || echo 'psql failed')" >&2
    exit 1
  fi
done
echo "QA passed on $environment: the application's queries (qa/app-queries.sql) ran cleanly on main and ci"
