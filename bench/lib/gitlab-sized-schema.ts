// A schema the size of GitLab's db/structure.sql (1,048 tables, 51 partitioned, 215 partitions, 4,743 indexes,
// 4,140 constraints, 295 triggers, 10,414 columns), generated, for timing drift's catalog comparison.

export const PLAIN_TABLES = 800;
export const PARTITIONED_TABLES = 50;
export const PARTITIONS_EACH = 4;
/** The case: one CREATE INDEX on a table of 64 hash partitions. */
export const WIDE_PARTITIONS = 64;
const TABLES_WITH_TRIGGER_EVERY = 3;

/** DDL for the whole schema, one string of statements. */
export function gitlabSizedSchema(): string {
  const sql = [
    'CREATE TABLE schema_migrations (version varchar PRIMARY KEY);',
    'CREATE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;',
  ];
  for (let index = 0; index < PLAIN_TABLES; index++) sql.push(plainTable(index));
  for (let index = 0; index < PARTITIONED_TABLES; index++) sql.push(partitionedTable(`partitioned_${index}`, PARTITIONS_EACH, index));
  sql.push(partitionedTable('wide_events', WIDE_PARTITIONS, PARTITIONED_TABLES));
  return sql.join('\n');
}

function plainTable(index: number): string {
  const name = `table_${index}`;
  const parent = index > 0 ? `table_${index - 1}` : undefined;
  const root = index > 1 ? `table_${Math.floor(index / 2)}` : undefined;
  return [
    `CREATE TABLE ${name} (
      id bigint PRIMARY KEY, project_id bigint, parent_id bigint, name text NOT NULL DEFAULT '', state smallint NOT NULL DEFAULT 0,
      weight integer, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz, payload jsonb, token text,
      CONSTRAINT check_${name}_name CHECK (char_length(name) <= 255), CONSTRAINT check_${name}_state CHECK (state >= 0));`,
    `CREATE INDEX index_${name}_on_project_id ON ${name} (project_id);`,
    `CREATE INDEX index_${name}_on_parent_id ON ${name} (parent_id);`,
    `CREATE INDEX index_${name}_on_created_at ON ${name} (created_at);`,
    `CREATE UNIQUE INDEX index_${name}_on_token ON ${name} (token) WHERE token IS NOT NULL;`,
    parent ? `ALTER TABLE ${name} ADD CONSTRAINT fk_${name}_parent FOREIGN KEY (parent_id) REFERENCES ${parent} (id) ON DELETE CASCADE;` : '',
    root ? `ALTER TABLE ${name} ADD CONSTRAINT fk_${name}_project FOREIGN KEY (project_id) REFERENCES ${root} (id) ON DELETE SET NULL;` : '',
    index % TABLES_WITH_TRIGGER_EVERY === 0 ? `CREATE TRIGGER trigger_${name}_touch BEFORE UPDATE ON ${name} FOR EACH ROW EXECUTE FUNCTION touch_updated_at();` : '',
  ].join('\n');
}

function partitionedTable(name: string, partitions: number, index: number): string {
  const sql = [
    `CREATE TABLE ${name} (
      id bigint NOT NULL, project_id bigint, name text NOT NULL DEFAULT '', created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz, payload jsonb, size bigint, PRIMARY KEY (id)) PARTITION BY HASH (id);`,
  ];
  for (let remainder = 0; remainder < partitions; remainder++) sql.push(`CREATE TABLE ${name}_${remainder} PARTITION OF ${name} FOR VALUES WITH (MODULUS ${partitions}, REMAINDER ${remainder});`);
  sql.push(
    `CREATE INDEX index_${name}_on_created_at ON ${name} (created_at);`,
    `ALTER TABLE ${name} ADD CONSTRAINT fk_${name}_project FOREIGN KEY (project_id) REFERENCES table_${index} (id) ON DELETE CASCADE;`,
    `CREATE TRIGGER trigger_${name}_touch BEFORE UPDATE ON ${name} FOR EACH ROW EXECUTE FUNCTION touch_updated_at();`,
  );
  return sql.join('\n');
}

/**
 * The six differences planted in GitLab's schema, and the 64-partition index, applied to the second copy.
 * Each entry: what it changes, and the object whose drift line reports it.
 */
export const PLANTED_DIFFERENCES: { sql: string; object: string }[] = [
  { sql: 'ALTER TABLE table_10 DROP COLUMN weight;', object: 'column public.table_10.weight' },
  { sql: 'CREATE INDEX index_table_20_on_name ON table_20 (name);', object: 'index public.index_table_20_on_name' },
  {
    sql: 'ALTER TABLE table_30 DROP CONSTRAINT fk_table_30_parent; ALTER TABLE table_30 ADD CONSTRAINT fk_table_30_parent FOREIGN KEY (parent_id) REFERENCES table_29 (id) ON DELETE CASCADE NOT VALID;',
    object: 'constraint public.table_30.fk_table_30_parent',
  },
  { sql: 'DROP TRIGGER trigger_table_42_touch ON table_42;', object: 'trigger public.table_42.trigger_table_42_touch' },
  { sql: "ALTER TABLE table_50 ALTER COLUMN name SET DEFAULT 'unnamed';", object: 'column public.table_50.name' },
  // What a failed CREATE INDEX CONCURRENTLY leaves behind, without waiting for one to fail.
  { sql: "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'index_table_60_on_created_at'::regclass;", object: 'index public.index_table_60_on_created_at' },
  { sql: 'CREATE INDEX index_wide_events_on_project_id ON wide_events (project_id);', object: 'index public.index_wide_events_on_project_id' },
];
