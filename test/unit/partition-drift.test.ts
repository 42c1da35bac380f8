import { describe, expect, it } from 'vitest';
import { compareSnapshots, describeDrift, type SchemaSnapshot } from '../../core/drift';

const PARTITIONS = [0, 1, 2, 3];
const INDEX = 'index public.index_events_on_project_id';
const FK = 'constraint public.events.fk_events_project';
const FK_DEFINITION = 'FOREIGN KEY (project_id) REFERENCES projects(id)';

/** A hash-partitioned `events` with an index and a foreign key on the parent, as PostgreSQL copies them to each partition. */
function partitionedEvents(options: { validIndex?: boolean; partitionIndexes?: number[] } = {}): SchemaSnapshot {
  const invalid = options.validIndex === false ? ' (INVALID)' : '';
  const snapshot: SchemaSnapshot = {
    versions: [],
    catalog: { [INDEX]: `CREATE INDEX index_events_on_project_id ON ONLY public.events USING btree (project_id)${invalid}`, [FK]: FK_DEFINITION },
    parents: {},
  };
  for (const partition of options.partitionIndexes ?? PARTITIONS) {
    const index = `index public.events_${partition}_project_id_idx`;
    snapshot.catalog[index] = `CREATE INDEX events_${partition}_project_id_idx ON public.events_${partition} USING btree (project_id)`;
    snapshot.parents[index] = INDEX;
  }
  for (const partition of PARTITIONS) {
    const fk = `constraint public.events_${partition}.fk_events_project`;
    snapshot.catalog[fk] = FK_DEFINITION;
    snapshot.parents[fk] = FK;
  }
  return snapshot;
}

const empty: SchemaSnapshot = { versions: [], catalog: {}, parents: {} };

describe('drift on partitioned tables', () => {
  it('reports an index and a foreign key on a partitioned table once each, with the number of partitions they were copied to', () => {
    const report = compareSnapshots('staging', partitionedEvents(), 'production', empty, new Set());
    expect(describeDrift(report)).toEqual([
      `${FK} only on staging: ${FK_DEFINITION}; and the same on 4 partitions`,
      `${INDEX} only on staging: CREATE INDEX index_events_on_project_id ON ONLY public.events USING btree (project_id); and the same on 4 partitions`,
    ]);
    expect(report.catalog.find((difference) => difference.object === INDEX)?.partitions).toEqual(PARTITIONS.map((partition) => `index public.events_${partition}_project_id_idx`));
  });

  it('still reports the partition whose index is missing under a parent index left INVALID', () => {
    const partial = partitionedEvents({ validIndex: false, partitionIndexes: [0, 1, 2] });
    const report = compareSnapshots('staging', partitionedEvents(), 'production', partial, new Set());
    expect(describeDrift(report)).toEqual([
      'index public.events_3_project_id_idx only on staging: CREATE INDEX events_3_project_id_idx ON public.events_3 USING btree (project_id)',
      `${INDEX} differs: staging has CREATE INDEX index_events_on_project_id ON ONLY public.events USING btree (project_id); production has CREATE INDEX index_events_on_project_id ON ONLY public.events USING btree (project_id) (INVALID)`,
    ]);
  });

  it('reports a partition trigger that differs from its parent on its own line, and the parent without it', () => {
    const trigger = (table: string, disabled = false) => `CREATE TRIGGER events_touch BEFORE INSERT ON public.${table} FOR EACH ROW EXECUTE FUNCTION touch()${disabled ? ' (disabled)' : ''}`;
    const withTrigger = (disabledOn?: number): SchemaSnapshot => {
      const snapshot: SchemaSnapshot = { versions: [], catalog: { 'trigger public.events.events_touch': trigger('events') }, parents: {} };
      for (const partition of PARTITIONS) {
        const object = `trigger public.events_${partition}.events_touch`;
        snapshot.catalog[object] = trigger(`events_${partition}`, partition === disabledOn);
        snapshot.parents[object] = 'trigger public.events.events_touch';
      }
      return snapshot;
    };
    expect(describeDrift(compareSnapshots('staging', withTrigger(2), 'production', withTrigger(), new Set()))).toEqual([
      `trigger public.events_2.events_touch differs: staging has ${trigger('events_2', true)}; production has ${trigger('events_2')}`,
    ]);
    expect(describeDrift(compareSnapshots('staging', withTrigger(2), 'production', empty, new Set()))).toEqual([
      `trigger public.events.events_touch only on staging: ${trigger('events')}; and the same on 3 partitions`,
      `trigger public.events_2.events_touch only on staging: ${trigger('events_2', true)}`,
    ]);
  });

  it('folds sub-partitions into the top parent, and a key on a referenced partition into the key it derives from', () => {
    const snapshot: SchemaSnapshot = {
      versions: [],
      catalog: {
        'column public.events.size': 'bigint',
        'column public.events_0.size': 'bigint',
        'column public.events_0_a.size': 'bigint',
        'constraint public.refs.fk_refs_event': 'FOREIGN KEY (event_id) REFERENCES events(id)',
        'constraint public.refs.refs_event_id_fkey': 'FOREIGN KEY (event_id) REFERENCES events_0(id)',
      },
      parents: {
        'column public.events_0.size': 'column public.events.size',
        'column public.events_0_a.size': 'column public.events_0.size',
        'constraint public.refs.refs_event_id_fkey': 'constraint public.refs.fk_refs_event',
      },
    };
    expect(describeDrift(compareSnapshots('a', empty, 'b', snapshot, new Set()))).toEqual([
      'column public.events.size only on b: bigint; and the same on 2 partitions',
      'constraint public.refs.fk_refs_event only on b: FOREIGN KEY (event_id) REFERENCES events(id); and the same on 1 partition',
    ]);
  });
});
