-- A NOT VALID key is still enforced on every new write, so it comes only after the backfill (seed 000):
-- the pipeline waits until backfill_ci_runners_e59bb2812d finished on the environment's ci database before adding it.
-- The runner tables live in the ci database; the main database records these migrations as skipped.
-- It skips the scan of existing rows, which the next migration validates without blocking writes.
-- dbchange:requires-backfill backfill_ci_runners_e59bb2812d
-- dbchange:databases ci
-- migrate:up
ALTER TABLE ci_runner_machines
  ADD CONSTRAINT fk_rails_3f92913d27 FOREIGN KEY (runner_id)
  REFERENCES ci_runners_e59bb2812d (id) ON DELETE CASCADE NOT VALID;

-- migrate:down
ALTER TABLE ci_runner_machines DROP CONSTRAINT IF EXISTS fk_rails_3f92913d27;
