-- CONCURRENTLY cannot run in a transaction; IF NOT EXISTS makes a retry after a lost connection safe.
-- dbchange:databases ci
-- migrate:up transaction:false
CREATE INDEX CONCURRENTLY IF NOT EXISTS index_ci_runner_machines_on_contacted_at
  ON ci_runner_machines (contacted_at);

-- migrate:down transaction:false
DROP INDEX CONCURRENTLY IF EXISTS index_ci_runner_machines_on_contacted_at;
