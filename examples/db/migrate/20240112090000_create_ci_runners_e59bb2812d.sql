-- The sharded copy of ci_runners. From this version on the application writes every runner to both
-- tables; the rows written before it are copied by a post-deploy migration.
-- migrate:up
CREATE TABLE ci_runners_e59bb2812d (
  id bigint PRIMARY KEY,
  runner_type smallint NOT NULL,
  name text NOT NULL,
  contacted_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- migrate:down
DROP TABLE ci_runners_e59bb2812d;
