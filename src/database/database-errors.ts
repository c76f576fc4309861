import { HttpStatus } from '@nestjs/common';
import { DomainException } from '../common/domain.exception';

/** Seconds a client is told to wait (`Retry-After`) when the database is unavailable. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

/** Socket errors of a database connection that cannot be opened or was lost. */
const NETWORK_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ECONNABORTED: 'connection aborted',
  EPIPE: 'connection lost',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  EHOSTDOWN: 'host down',
  ENETUNREACH: 'network unreachable',
  ENETDOWN: 'network down',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
};

/** SQLite result codes that say "not now" rather than "never". */
const SQLITE_CODES: Record<string, string> = {
  SQLITE_BUSY: 'the database file is locked by another connection',
  SQLITE_LOCKED: 'a table is locked',
  SQLITE_IOERR: 'disk I/O error',
  SQLITE_CANTOPEN: 'the database file cannot be opened',
  SQLITE_FULL: 'the disk is full',
  SQLITE_PROTOCOL: 'locking protocol error',
};

/**
 * PostgreSQL SQLSTATEs of an unavailable server: class 08 (connection exception), 57P01-57P05
 * (shutdown, crash, starting up, database dropped, idle timeout), class 53 (out of connections,
 * memory or disk), serialization failures and deadlocks (40001, 40P01), lock and statement
 * timeouts (55P03, 57014) and a read-only standby after a failover (25006).
 */
function postgresReason(code: string): string | null {
  if (/^08[0-9A-Z]{3}$/.test(code)) return 'connection failure';
  if (/^57P0[1-5]$/.test(code)) return code === '57P03' ? 'the server is starting up' : 'the server shut down the connection';
  if (/^53[0-9A-Z]{3}$/.test(code)) return code === '53300' ? 'too many connections' : 'the server is out of resources';
  if (code === '40001' || code === '40P01') return 'a conflicting transaction';
  if (code === '55P03' || code === '57014') return 'a lock or statement timeout';
  if (code === '25006') return 'the server is read-only';
  return null;
}

/** node-postgres and pg-pool errors that carry no code, by message. */
const PG_MESSAGES: [RegExp, string][] = [
  [/Connection terminated/i, 'connection lost'],
  [/timeout exceeded when trying to connect/i, 'connection timed out'],
  [/connection error and is not queryable|Client was closed and is not queryable/i, 'connection lost'],
  [/Query read timeout/i, 'query timed out'],
];

/** The error and what it wraps (TypeORM's QueryFailedError keeps the driver's error as `driverError`). */
function* chain(err: unknown): Generator<Record<string, unknown>> {
  let e: unknown = err;
  for (let i = 0; i < 4 && typeof e === 'object' && e !== null; i++) {
    yield e as Record<string, unknown>;
    const next = (e as { driverError?: unknown; cause?: unknown }).driverError ?? (e as { cause?: unknown }).cause;
    if (next === e) break;
    e = next;
  }
}

/**
 * Why the database could not serve this call if it is a fault of availability (down, unreachable,
 * locked, overloaded) that a later retry can get past; null for any other error (a bug, a refused
 * value). Names no host, port or query, so it can be shown to API clients.
 */
export function databaseUnavailableReason(err: unknown): string | null {
  for (const e of chain(err)) {
    const code = typeof e.code === 'string' ? e.code : '';
    if (NETWORK_CODES[code]) return NETWORK_CODES[code];
    if (SQLITE_CODES[code]) return SQLITE_CODES[code];
    const sqlite = /^(SQLITE_[A-Z]+)/.exec(String(e.message ?? ''));
    if (sqlite && SQLITE_CODES[sqlite[1]]) return SQLITE_CODES[sqlite[1]];
    const pg = code ? postgresReason(code) : null;
    if (pg) return pg;
    const message = String(e.message ?? '');
    for (const [pattern, reason] of PG_MESSAGES) if (pattern.test(message)) return reason;
  }
  return null;
}

export const isDatabaseUnavailable = (err: unknown): boolean => databaseUnavailableReason(err) !== null;

/**
 * Errors that retrying cannot fix: the database refuses the data itself (PostgreSQL SQLSTATE
 * classes 22 "data exception" and 23 "integrity constraint"; SQLite constraint/type errors).
 * Lock, I/O and connection errors are not in this list: those writes are retried.
 */
export function isPermanentDataError(err: unknown): boolean {
  const code = String((err as { code?: unknown })?.code ?? '');
  return /^2[23][0-9A-Z]{3}$/.test(code) || ['SQLITE_CONSTRAINT', 'SQLITE_MISMATCH', 'SQLITE_TOOBIG', 'SQLITE_RANGE'].includes(code);
}

/** 503 with `Retry-After`: the database is down, unreachable or locked; the request may be repeated. */
export class DatabaseUnavailableException extends DomainException {
  readonly code = 'DATABASE_UNAVAILABLE';
  readonly status = HttpStatus.SERVICE_UNAVAILABLE;
  readonly retryAfterSeconds = DATABASE_RETRY_AFTER_SECONDS;

  /**
   * @param reason what failed, fit for the client to read (no host, port or query)
   * @param failure the driver's error, for the server log only
   */
  constructor(
    reason: string,
    details?: Record<string, unknown>,
    readonly failure?: unknown,
  ) {
    super(`The database is not available right now (${reason}); try again in a few seconds`, details);
  }
}
