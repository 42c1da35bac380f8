-- Copies the runners created before the dual write into the sharded table. Idempotent: safe to run again.
-- A data migration of the ci schema: it runs on the ci database and is recorded as done on main.
-- dbchange:databases ci
-- migrate:up
INSERT INTO ci_runners_e59bb2812d (id, runner_type, name, contacted_at, created_at)
SELECT id, runner_type, name, contacted_at, created_at
FROM ci_runners
ON CONFLICT (id) DO NOTHING;

-- migrate:down
-- Nothing to undo: the copied rows are identical to ci_runners and the application keeps writing both.
