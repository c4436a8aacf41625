/**
 * Which failures a call may try again, and how long it waits first.
 *
 * Every store statement is idempotent (an upsert, an expiry update, a delete,
 * a read) and every write carries a cutoff past which it refuses to apply, so
 * running a statement again while its call is still open can neither apply
 * it twice nor apply it after the call was reported failed. What is retried
 * is what a healthy database soon stops doing: a connection lost or refused,
 * a server shutting down or starting up, a read-only server during a
 * failover, a deadlock or serialization failure. A bad query, missing table
 * or privilege, or bad data fails at once.
 *
 * @module
 */

/** Error codes of postgres.js and of Node's sockets that mean the connection failed. */
const CONNECTION_CODES = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  "NOT_RUN", // postgres.js answered without running it (queries.ts)
]);

/** SQLSTATEs a healthy database soon stops answering with. */
const TRANSIENT_SQLSTATES = new Set([
  "25006", // read_only_sql_transaction: a primary demoted or draining in a failover
  "40001", // serialization_failure
  "40P01", // deadlock_detected
  "53300", // too_many_connections
  "57P01", // admin_shutdown: terminated, or the server is stopping
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now: starting up or shutting down
  "57P05", // idle_session_timeout (PostgreSQL 14+)
]);

/** Whether a call that failed with `error` may run its statement again. */
export function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return false;
  return CONNECTION_CODES.has(code) || TRANSIENT_SQLSTATES.has(code) ||
    code.startsWith("08"); // connection_exception and its subclasses
}

/** The longest wait between two attempts of one call. */
export const MAX_RETRY_DELAY_MS = 500;

/**
 * The wait before attempt `retry + 1` (the first retry is `retry = 0`): at
 * once, since a connection the server closed while idle fails its next call
 * and the pool's next connection usually works; then 20 ms doubling up to
 * {@linkcode MAX_RETRY_DELAY_MS}, with jitter so that many waiting calls do
 * not return together.
 */
export function retryDelay(retry: number): number {
  if (retry === 0) return 0;
  const base = Math.min(10 * 2 ** retry, MAX_RETRY_DELAY_MS);
  return base / 2 + Math.random() * base / 2;
}
