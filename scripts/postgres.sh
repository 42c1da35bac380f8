#!/usr/bin/env bash
# Makes sure the machine's PostgreSQL (127.0.0.1:5432, trust auth, user postgres) is up, for the tests.
set -euo pipefail
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then exit 0; fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [[ -d /etc/postgresql ]]; then
  echo "dbchange setup: starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
for _ in $(seq 1 30); do
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then exit 0; fi
  sleep 1
done
echo "dbchange: PostgreSQL is not answering on 127.0.0.1:5432; start it (pg_ctlcluster ... main start) or set DBCHANGE_TEST_ADMIN_URL" >&2
exit 1
