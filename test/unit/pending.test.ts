import { describe, expect, it } from 'vitest';
import { comparePending, describeEdited, oldestPendingAgeSeconds, versionTime, type FileState } from '../../core/pending';

interface File extends FileState {
  path: string;
}

const file = (version: string, name: string, checksum: string): File => ({
  version,
  name,
  fileName: `${version}_${name}.sql`,
  checksum,
  path: `/db/post_migrate/${version}_${name}.sql`,
});

const first = file('20240101000000', 'backfill_users', 'aaa');
const second = file('20240102000000', 'add_fk_orders', 'bbb');
const third = file('20240103000000', 'validate_fk_orders', 'ccc');

describe('comparePending', () => {
  it('lists the files absent from schema_migrations, in folder order, as the same objects', () => {
    const report = comparePending([first, second, third], {
      versions: new Set([second.version]),
      checksums: new Map([[second.version, 'bbb']]),
    });
    expect(report.pending).toEqual([first, third]);
    expect(report.pending[0]).toBe(first);
    expect(report.pending[0].path).toBe('/db/post_migrate/20240101000000_backfill_users.sql');
    expect(report.edited).toEqual([]);
  });

  it('reports nothing when every file ran with the same bytes', () => {
    const report = comparePending([first, second], {
      versions: new Set([first.version, second.version]),
      checksums: new Map([
        [first.version, 'aaa'],
        [second.version, 'bbb'],
      ]),
    });
    expect(report).toEqual({ pending: [], edited: [] });
  });

  it('flags an applied file whose checksum changed since it ran, with both checksums', () => {
    const report = comparePending([first, second], {
      versions: new Set([first.version, second.version]),
      checksums: new Map([
        [first.version, 'aaa'],
        [second.version, 'old-bbb'],
      ]),
    });
    expect(report.pending).toEqual([]);
    expect(report.edited).toEqual([
      { version: second.version, fileName: '20240102000000_add_fk_orders.sql', appliedChecksum: 'old-bbb', fileChecksum: 'bbb' },
    ]);
  });

  it('does not flag applied rows without a recorded checksum (run by Rails or dbmate, not dbchange)', () => {
    const report = comparePending([first, second], {
      versions: new Set([first.version, second.version]),
      checksums: new Map([[second.version, '']]),
    });
    expect(report).toEqual({ pending: [], edited: [] });
  });

  it('treats schema_migrations as the authority on what ran, not the ledger checksums', () => {
    const report = comparePending([first], { versions: new Set(), checksums: new Map([[first.version, 'zzz']]) });
    expect(report.pending).toEqual([first]);
    expect(report.edited).toEqual([]);
  });

  it('ignores applied versions that have no file in the folder', () => {
    const report = comparePending([third], {
      versions: new Set(['20200101000000', third.version]),
      checksums: new Map([['20200101000000', 'gone']]),
    });
    expect(report).toEqual({ pending: [], edited: [] });
  });
});

describe('describeEdited', () => {
  const edited = (fileName: string) => ({ version: fileName.slice(0, 14), fileName, appliedChecksum: 'a', fileChecksum: 'b' });

  it('starts with the searchable prefix and names one file in the singular', () => {
    expect(describeEdited('production', [edited('20240102000000_add_fk_orders.sql')])).toBe(
      'corrupted migrations: 20240102000000_add_fk_orders.sql changed after it was applied on production; ' +
        'restore the applied version and put the change in a new migration',
    );
  });

  it('names every edited file in the plural', () => {
    const message = describeEdited('staging', [edited('20240101000000_a.sql'), edited('20240102000000_b.sql')]);
    expect(message).toContain('corrupted migrations: 20240101000000_a.sql, 20240102000000_b.sql changed after they were applied on staging;');
  });
});

describe('pending age', () => {
  it('reads a version as the UTC time it was written, and refuses one that is no real time', () => {
    expect(versionTime('20240102030405')).toBe(Date.UTC(2024, 0, 2, 3, 4, 5));
    expect(versionTime('20240231000000')).toBeUndefined();
    expect(versionTime('20241301000000')).toBeUndefined();
    expect(versionTime('2024010203')).toBeUndefined();
  });

  it('counts the oldest pending version, in whole seconds, and 0 when nothing is pending', () => {
    const now = Date.UTC(2024, 0, 4, 0, 0, 30);
    expect(oldestPendingAgeSeconds([second, first], now)).toBe(3 * 86_400 + 30);
    expect(oldestPendingAgeSeconds([], now)).toBe(0);
    // A version from the future (a clock ahead on the author's machine) has waited no time yet.
    expect(oldestPendingAgeSeconds([file('20250101000000', 'later', 'x')], now)).toBe(0);
  });
});
