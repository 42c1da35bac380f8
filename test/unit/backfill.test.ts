import { describe, expect, it } from 'vitest';
import { backfillFilling } from '../../core/prechecks';
import { tablesFilledBy, bindBatchSql, describeProgress, missingBounds, nextBatchSize, paceDelayMs, pauseReason, reportProgress, splitBatchSize } from '../../core/backfill';

describe('nextBatchSize', () => {
  it('grows a batch that ran faster than its target, at most twofold', () => {
    expect(nextBatchSize(1_000, 250, 1_000, 100_000)).toBe(2_000);
    expect(nextBatchSize(1_000, 800, 1_000, 100_000)).toBe(1_250);
  });

  it('shrinks a batch that ran slower than its target, at most by half', () => {
    expect(nextBatchSize(1_000, 2_000, 1_000, 100_000)).toBe(500);
    expect(nextBatchSize(1_000, 10_000, 1_000, 100_000)).toBe(500);
  });

  it('stays within maxBatchSize and never below one key', () => {
    expect(nextBatchSize(80_000, 10, 1_000, 100_000)).toBe(100_000);
    expect(nextBatchSize(1, 5_000, 1_000, 100)).toBe(1);
  });

  it('splits a batch that hit statement_timeout in half', () => {
    expect(splitBatchSize(1_000)).toBe(500);
    expect(splitBatchSize(1)).toBe(1);
  });
});

describe('paceDelayMs', () => {
  it('waits so that the rate stays under maxRowsPerSecond', () => {
    expect(paceDelayMs(1_000, 200, 1_000)).toBe(800);
    expect(paceDelayMs(1_000, 1_500, 1_000)).toBe(0);
    expect(paceDelayMs(1_000, 200, undefined)).toBe(0);
  });
});

describe('pauseReason', () => {
  const conditions = { replicationLagOverMs: 5_000, autovacuumOnTable: true, lockWaitersOver: 3, query: 'SELECT pause FROM ops_flags' };

  it('names the condition that holds and the value it read', () => {
    expect(pauseReason(conditions, { replicationLagMs: 12_000 })).toMatchObject({ condition: 'replicationLagOver', value: '12.0s' });
    expect(pauseReason(conditions, { replicationLagMs: 12_000 })!.text).toBe('replicationLagOver: replica replay lag 12.0s is over 5.0s');
    expect(pauseReason(conditions, { autovacuumRunning: true })).toMatchObject({ condition: 'autovacuumOnTable', value: 'running' });
    expect(pauseReason(conditions, { lockWaiters: 4 })).toMatchObject({ condition: 'lockWaitersOver', value: '4' });
    expect(pauseReason(conditions, { queryResult: true })).toMatchObject({ condition: 'query', value: 'true' });
  });

  it('goes on when every reading is within its limit', () => {
    expect(pauseReason(conditions, { replicationLagMs: 5_000, autovacuumRunning: false, lockWaiters: 3, queryResult: false })).toBeUndefined();
  });

  it('ignores a reading whose condition the file does not name', () => {
    expect(pauseReason({}, { replicationLagMs: 60_000, autovacuumRunning: true, lockWaiters: 100, queryResult: true })).toBeUndefined();
  });
});

describe('progress', () => {
  const progress = { range: { start: 1, end: 1_001 }, cursor: 251, rowsDone: 250, batchesDone: 5, workingMs: 10_000 };

  it('reports percent of the key range, rate per working second and time left', () => {
    expect(reportProgress(progress)).toEqual({ rowsDone: 250, batchesDone: 5, percent: 25, rowsPerSecond: 25, etaMs: 30_000 });
  });

  it('has no estimate before the first batch, and 100% for an empty table', () => {
    expect(reportProgress({ ...progress, cursor: 1, rowsDone: 0, workingMs: 0 }).etaMs).toBeUndefined();
    expect(reportProgress({ range: { start: 0, end: 0 }, cursor: 0, rowsDone: 0, batchesDone: 0, workingMs: 0 }).percent).toBe(100);
  });

  it('reads as one line', () => {
    expect(describeProgress(progress)).toBe('25% of keys 1..1000 · 250 rows · 25 rows/s · about 30.0s left');
  });
});

describe('batch SQL', () => {
  it('binds :start and :end as parameters and leaves casts alone', () => {
    expect(bindBatchSql('UPDATE t SET a = b::int WHERE id >= :start AND id < :end')).toBe('UPDATE t SET a = b::int WHERE id >= $1 AND id < $2');
  });

  it('says which bound the SQL lacks', () => {
    expect(missingBounds('UPDATE t SET a = 1 WHERE id >= :start')).toEqual(['end']);
    expect(missingBounds('UPDATE t SET a = 1')).toEqual(['start', 'end']);
    expect(missingBounds('UPDATE t SET a = 1 WHERE id BETWEEN :start AND :end - 1')).toEqual([]);
  });
});

describe('the backfill that fills a table', () => {
  const copy = { name: 'backfill_ci_runners', tables: tablesFilledBy({ table: 'ci_runners', batch: 'INSERT INTO ci_runners_e59bb2812d (id) SELECT id FROM ci_runners WHERE id >= :start AND id < :end' }) };

  it('is the one that walks it or writes it', () => {
    expect(copy.tables).toEqual(['ci_runners', 'ci_runners_e59bb2812d']);
    expect(backfillFilling([copy], { name: 'ci_runners_e59bb2812d' })).toBe('backfill_ci_runners');
    expect(backfillFilling([copy], { schema: 'public', name: 'ci_runners' })).toBe('backfill_ci_runners');
    expect(backfillFilling([copy], { name: 'projects' })).toBeUndefined();
  });
});
