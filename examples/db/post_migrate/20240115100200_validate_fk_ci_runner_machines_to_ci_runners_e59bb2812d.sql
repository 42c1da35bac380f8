-- VALIDATE takes a SHARE UPDATE EXCLUSIVE lock: reads and writes go on while it scans.
-- dbchange:databases ci
-- migrate:up
ALTER TABLE ci_runner_machines VALIDATE CONSTRAINT fk_rails_3f92913d27;

-- migrate:down
-- Nothing to undo: validating changes no data; drop the key with the previous migration's down.
