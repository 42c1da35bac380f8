// Which PostgreSQL errors are safe to retry. Everything not listed here stops for a human.
export const LOCK_NOT_AVAILABLE = '55P03';
export const DEADLOCK_DETECTED = '40P01';
export const QUERY_CANCELED = '57014';
export const SERIALIZATION_FAILURE = '40001';
const TRANSIENT_SQLSTATES = new Set([DEADLOCK_DETECTED, LOCK_NOT_AVAILABLE, SERIALIZATION_FAILURE, '57P01', '57P02', '57P03']);
/** 57014 says only "query canceled": the message tells statement_timeout apart from a person's pg_cancel_backend. */
const STATEMENT_TIMEOUT_MESSAGE = /statement timeout/i;
/** Node-level socket errors: the connection was lost, not the statement refused. */
const LOST_CONNECTION_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const LOST_CONNECTION_MESSAGES = [/Connection terminated/i, /connection.*(closed|ended|lost)/i, /the database system is (starting up|shutting down)/i];

/**
 * transient: retry (bounded by lockRetry.maxAttempts); statement-timeout: retry at most
 * lockRetry.statementTimeoutRetries times, since the same statement on the same data tends to time out again;
 * permanent: stop for a person (a cancel by another session included: someone meant it).
 */
export type ErrorClass = 'transient' | 'statement-timeout' | 'permanent';

/** The fields of a node-postgres error that a DBA wants to see. */
export interface PgErrorFields {
  code?: string;
  message: string;
  detail?: string;
  hint?: string;
  table?: string;
  constraint?: string;
  column?: string;
  position?: string;
}

export function classifyPgError(error: PgErrorFields): ErrorClass {
  const code = error.code ?? '';
  if (code === QUERY_CANCELED) return STATEMENT_TIMEOUT_MESSAGE.test(error.message) ? 'statement-timeout' : 'permanent';
  if (TRANSIENT_SQLSTATES.has(code) || code.startsWith('08') || LOST_CONNECTION_CODES.has(code)) return 'transient';
  if (!code && LOST_CONNECTION_MESSAGES.some((pattern) => pattern.test(error.message))) return 'transient';
  return 'permanent';
}

export function describeSqlState(code: string | undefined): string {
  switch (code) {
    case DEADLOCK_DETECTED:
      return 'deadlock detected';
    case LOCK_NOT_AVAILABLE:
      return 'lock timeout';
    case QUERY_CANCELED:
      return 'statement timeout';
    case SERIALIZATION_FAILURE:
      return 'serialization failure';
    default:
      return code ?? 'no SQLSTATE';
  }
}
