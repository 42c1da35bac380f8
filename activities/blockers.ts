// Who holds the lock a DDL statement waits for, and when they let go.
import type pg from 'pg';

export interface BlockingSession {
  pid: number;
  state: string;
  /** Seconds since the blocker's transaction began. */
  transactionAgeSeconds: number;
  query: string;
  /** Identifies the blocker's transaction: when it changes or vanishes, the lock is gone. */
  transactionStart: string | null;
}

const WATCH_START_MS = 40;
const WATCH_INTERVAL_MS = 40;
const QUERY_PREVIEW = 200;

/** Sessions that block `pid` right now (direct blockers, as pg_blocking_pids reports them). */
export async function findBlockers(db: pg.Pool, pid: number): Promise<BlockingSession[]> {
  const result = await db.query<{ pid: number; state: string | null; age: number | null; query: string | null; xact_start: string | null }>(
    `SELECT a.pid, a.state, EXTRACT(EPOCH FROM now() - a.xact_start)::float8 AS age, a.query, a.xact_start::text AS xact_start
       FROM pg_stat_activity a WHERE a.pid = ANY(pg_blocking_pids($1)) ORDER BY a.pid`,
    [pid],
  );
  return result.rows.map((row) => ({
    pid: row.pid,
    state: row.state ?? 'unknown',
    transactionAgeSeconds: Math.round(row.age ?? 0),
    query: (row.query ?? '').replace(/\s+/g, ' ').slice(0, QUERY_PREVIEW),
    transactionStart: row.xact_start,
  }));
}

/** "pid 4242, idle in transaction 38s: UPDATE ci_runners …" */
export function describeBlocker(blocker: BlockingSession): string {
  return `pid ${blocker.pid}, ${blocker.state} ${blocker.transactionAgeSeconds}s: ${blocker.query}`;
}

/**
 * Watches a running statement from a second connection and remembers who blocks it, so that after a
 * lock timeout we know whom to wait for. Costs nothing for statements that finish within WATCH_START_MS.
 */
export function watchBlockers(db: pg.Pool, pid: number): { stop(): BlockingSession[] } {
  let seen: BlockingSession[] = [];
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const poll = async () => {
    if (stopped) return;
    try {
      const blockers = await findBlockers(db, pid);
      if (blockers.length > 0) seen = blockers;
    } catch {
      // The watcher is advisory: the statement's own outcome decides what happens.
    }
    if (!stopped) timer = setTimeout(() => void poll(), WATCH_INTERVAL_MS);
  };
  timer = setTimeout(() => void poll(), WATCH_START_MS);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      return seen;
    },
  };
}

/** True once every given blocker's transaction has ended (session gone, idle, or a new transaction). */
export async function blockersGone(db: pg.Pool, blockers: BlockingSession[]): Promise<boolean> {
  const result = await db.query<{ pid: number; xact_start: string | null }>(
    `SELECT pid, xact_start::text AS xact_start FROM pg_stat_activity WHERE pid = ANY($1::int[])`,
    [blockers.map((blocker) => blocker.pid)],
  );
  const current = new Map(result.rows.map((row) => [row.pid, row.xact_start]));
  return blockers.every((blocker) => {
    const start = current.get(blocker.pid);
    return start === undefined || start === null || start !== blocker.transactionStart;
  });
}
