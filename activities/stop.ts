// A person stopping a running step reaches its SQL: the activity's cancellation cancels the statement on the server.
import type pg from 'pg';

/** True once the workflow cancelled the activity (a person's stop); not for a worker shutting down or a timeout. */
export function stoppedByPerson(signal: AbortSignal): boolean {
  return signal.aborted && (signal.reason as Error | undefined)?.message === 'CANCELLED';
}

/** While a statement runs on backend `pid`: a stop cancels it there (pg_cancel_backend), so it rolls back at once. */
export function cancelOnStop(signal: AbortSignal, pool: pg.Pool, pid: number): { dispose(): void } {
  const cancel = () => {
    if (stoppedByPerson(signal)) void pool.query('SELECT pg_cancel_backend($1)', [pid]).catch(() => undefined);
  };
  signal.addEventListener('abort', cancel, { once: true });
  return { dispose: () => signal.removeEventListener('abort', cancel) };
}
