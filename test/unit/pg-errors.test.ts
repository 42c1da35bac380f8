import { describe, expect, it } from 'vitest';
import {
  classifyPgError,
  DEADLOCK_DETECTED,
  describeSqlState,
  LOCK_NOT_AVAILABLE,
  QUERY_CANCELED,
  SERIALIZATION_FAILURE,
} from '../../core/pg-errors';

describe('classifyPgError', () => {
  it.each([
    ['40P01', 'deadlock_detected'],
    ['55P03', 'lock_not_available (lock_timeout)'],
    ['40001', 'serialization_failure'],
    ['08000', 'connection_exception'],
    ['08003', 'connection_does_not_exist'],
    ['08006', 'connection_failure'],
    ['08P01', 'protocol_violation'],
    ['57P01', 'admin_shutdown'],
    ['57P02', 'crash_shutdown'],
    ['57P03', 'cannot_connect_now'],
  ])('retries SQLSTATE %s (%s)', (code) => {
    expect(classifyPgError({ code, message: 'boom' })).toBe('transient');
  });

  it('tells a statement that hit statement_timeout (bounded retries) from one a person cancelled (stops for a person)', () => {
    expect(classifyPgError({ code: '57014', message: 'canceling statement due to statement timeout' })).toBe('statement-timeout');
    expect(classifyPgError({ code: '57014', message: 'canceling statement due to user request' })).toBe('permanent');
  });

  it.each(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN'])(
    'retries the lost-connection socket error %s',
    (code) => {
      expect(classifyPgError({ code, message: `connect ${code} 127.0.0.1:5432` })).toBe('transient');
    },
  );

  it.each([
    ['23503', 'insert or update on table "orders" violates foreign key constraint "orders_user_id_fkey"'],
    ['42703', 'column "nmae" does not exist'],
    ['23505', 'duplicate key value violates unique constraint "users_pkey"'],
    ['42P01', 'relation "missing" does not exist'],
    ['42601', 'syntax error at or near "SELEC"'],
    ['22P02', 'invalid input syntax for type integer: "x"'],
    ['25P02', 'current transaction is aborted, commands ignored until end of transaction block'],
    ['57P04', 'database dropped'],
    ['53100', 'could not extend file: No space left on device'],
    ['XX000', 'internal error'],
  ])('stops for a human on SQLSTATE %s', (code, message) => {
    expect(classifyPgError({ code, message })).toBe('permanent');
  });

  it.each([
    'Connection terminated unexpectedly',
    'Connection terminated due to connection timeout',
    'connection was closed by the server',
    'Connection ended unexpectedly',
    'server connection lost',
    'the database system is starting up',
    'the database system is shutting down',
  ])('retries a codeless error whose message says the connection was lost: %s', (message) => {
    expect(classifyPgError({ message })).toBe('transient');
  });

  it('treats an empty code like no code and still reads the message', () => {
    expect(classifyPgError({ code: '', message: 'Connection terminated unexpectedly' })).toBe('transient');
  });

  it('does not trust the message when a permanent SQLSTATE is present', () => {
    expect(classifyPgError({ code: '42703', message: 'column "connection_closed_at" does not exist' })).toBe('permanent');
  });

  it('stops for a human on a codeless error that says nothing about the connection', () => {
    expect(classifyPgError({ message: 'Cannot read properties of undefined' })).toBe('permanent');
  });
});

describe('describeSqlState', () => {
  it('names the transient states the way an operator says them', () => {
    expect(describeSqlState('40P01')).toBe('deadlock detected');
    expect(describeSqlState('55P03')).toBe('lock timeout');
    expect(describeSqlState('57014')).toBe('statement timeout');
    expect(describeSqlState('40001')).toBe('serialization failure');
  });

  it('falls back to the raw code, or says there is none', () => {
    expect(describeSqlState('23503')).toBe('23503');
    expect(describeSqlState(undefined)).toBe('no SQLSTATE');
  });

  it('exports the documented SQLSTATE codes', () => {
    expect([DEADLOCK_DETECTED, LOCK_NOT_AVAILABLE, QUERY_CANCELED, SERIALIZATION_FAILURE]).toEqual(['40P01', '55P03', '57014', '40001']);
  });
});
