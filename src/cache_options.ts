/**
 * The read cache's options, in a module of their own so that the Hono
 * adapter's types can name them without express-session's.
 *
 * @module
 */
import type { Sql } from "postgres";

/**
 * The read cache's settings (the `cache` option); every one is optional.
 *
 * @example Behind PgBouncer in transaction mode
 * ```ts ignore
 * const store = new PostgresStore({
 *   postgres: postgres(process.env.DATABASE_URL), // through PgBouncer
 *   cache: { listen: postgres(process.env.DIRECT_DATABASE_URL) }, // the server itself
 * });
 * ```
 */
export interface CacheOptions {
  /**
   * Sessions kept in memory at most (default 10000, at most 10000000); the
   * least recently used go first.
   */
  size?: number;
  /**
   * Seconds a session may be served from memory after it was read or
   * written (default 60): a bound for what the listener's checks could miss.
   * The listener checks that it still hears the table every 30 s, or every
   * `maxAge / 2` if shorter.
   */
  maxAge?: number;
  /**
   * A postgres.js `sql` whose connection settings the listening connection
   * copies (default: those of `postgres`, or of the store's own pool). Pass
   * one with a direct connection to the database when `postgres` goes
   * through PgBouncer in transaction or statement mode, where `LISTEN` does
   * not work. The store never ends it.
   */
  // deno-lint-ignore no-explicit-any
  listen?: Sql<any>;
}
