/**
 * The public types: the options a store takes and the store it makes.
 *
 * @module
 */
import type { SessionData, Store } from "express-session";
import type { Sql } from "postgres";
import type { CacheOptions } from "./cache_options.ts";

/** A Node-style callback: `callback(error)` or `callback(null, result)`. */
export type Callback<T> = (error: Error | null, result?: T) => void;

/**
 * Picks the delay before the next automatic prune.
 *
 * @param delayMs The configured interval, in milliseconds.
 * @returns The delay to wait, in milliseconds.
 */
export type PruneDelayRandomizer = (delayMs: number) => number;

/**
 * Where background errors go; called as `errorLog(message, error)`, like
 * `console.error`.
 */
export type ErrorLog = (message: string, ...details: unknown[]) => void;

/** A postgres.js `sql` instance, whatever custom types it was set up with. */
// deno-lint-ignore no-explicit-any
export type PostgresSql = Sql<any>;

/** The options of {@linkcode PostgresStore}; every one is optional. */
export interface PostgresStoreOptions {
  /**
   * The postgres.js `sql` to run queries on. When left out, the store opens
   * its own from `DATABASE_URL` (else the `PG*` variables), and `close()`
   * ends it; a `sql` passed in here is never ended by the store.
   */
  postgres?: PostgresSql;
  /**
   * Lifetime in seconds of a session whose cookie has no expiry
   * (default 86400, one day; at most 100 years). A cookie `maxAge` or
   * `expires` always wins.
   */
  ttl?: number;
  /** Create the schema and table on first use when they are missing (default `false`). */
  createTableIfMissing?: boolean;
  /** Make `touch` a no-op that never writes (default `false`). */
  disableTouch?: boolean;
  /** The schema of the table (default: none, so the connection's `search_path`). */
  schemaName?: string;
  /** The table's name (default `"session"`); one name, dots included. */
  tableName?: string;
  /**
   * Seconds between automatic prunes of expired sessions (default 60; from
   * 1 to 2147483, about 24.8 days), or `false` to never prune automatically.
   */
  pruneSessionInterval?: number | false;
  /**
   * Spreads each prune delay: by default over 50–150 % of the interval, so
   * that many instances do not prune together. `false` uses the interval
   * as it is; a function picks the delay itself.
   */
  pruneSessionRandomizedInterval?: false | PruneDelayRandomizer;
  /** Where background errors go (default `console.error`). */
  errorLog?: ErrorLog;
  /**
   * Seconds: a `touch` that would move a session's expiry by less than this
   * writes nothing (default 0, every touch writes; at most 100 years).
   */
  touchAfter?: number;
  /**
   * Seconds a call may take, from 0.05 (default 10): within it, a call that
   * meets a lost connection, a restarting server or a failover tries again;
   * past it, the call fails with a `CallTimeoutError` (`code`
   * `"CALL_TIMEOUT"`), so a request never hangs on the session store. A
   * write that fails this way never applies afterwards: each write refuses
   * to commit once its call's time is nearly up (the last fifth, at most the
   * last second). `false` for no limit. Raise it if `all()` or `clear()` run
   * on very large tables. Pruning is limited per batch of 1000 rows.
   */
  callTimeout?: number | false;
  /**
   * The path of a session's owner, segments separated by dots: e.g.
   * `"passport.user"` (Passport) or `"userId"`. Enables
   * {@linkcode PostgresStore.sessionsOf} and
   * {@linkcode PostgresStore.destroyOf}; PostgreSQL reads the owner from the
   * stored JSON, served by the index `IDX_<table>_user` (made by
   * `createTableIfMissing` or `connect-postgres-simple migrate --user-key`).
   */
  userKey?: string;
  /**
   * Seconds a session may live after it was created, however active it
   * stays (an absolute timeout; at most 100 years). Needs the table's
   * `created` column (made by `createTableIfMissing` or
   * `connect-postgres-simple migrate --created`). `regenerate()` gives a
   * session a new id, so a new lifetime.
   */
  maxLifetime?: number;
  /**
   * Serve `get` from memory while the session is unchanged (default
   * `false`): `true`, or {@linkcode CacheOptions}. The table must have the
   * notify triggers, which `createTableIfMissing` installs (on an existing
   * table too) and `connect-postgres-simple migrate --notify` installs;
   * without them the first call fails. Every write to the table, by any
   * client, invalidates through them; each store listens on one dedicated
   * connection and serves nothing from memory while it is down.
   */
  cache?: boolean | CacheOptions;
}

/** Who a session belongs to, compared with its value at `userKey` as `String(user)`. */
export type SessionOwner = string | number | bigint;

/** What {@linkcode PostgresStore.destroyOf} takes besides the user. */
export interface DestroyOfOptions {
  /** A session id to keep ("sign out other devices"). */
  except?: string;
}

/** A stored session as `all()` returns it: the session plus its `id`. */
export type StoredSession = SessionData & { id: string };

/**
 * The session store: an express-session `Store` on PostgreSQL.
 *
 * Every method takes an optional Node-style callback and returns a promise.
 * With a callback, errors go to the callback only and the promise resolves
 * once it has been called; without one, the promise carries the result or
 * the error. A failed call never surfaces as an unhandled rejection.
 */
export interface PostgresStore extends Store {
  /** Lifetime in seconds of sessions whose cookie has no expiry (read at each write). */
  ttl: number | undefined;

  /** Resolves to the unexpired session with this id, or `null`. */
  get(sid: string): Promise<SessionData | null>;
  /** Calls back with the unexpired session with this id, or `null`. */
  get(sid: string, callback: Callback<SessionData | null>): Promise<void>;

  /** Inserts or replaces the session with this id. */
  set(sid: string, session: SessionData): Promise<void>;
  /** Inserts or replaces the session with this id, then calls back. */
  set(
    sid: string,
    session: SessionData,
    callback: Callback<void>,
  ): Promise<void>;

  /** Deletes the session with this id (no error when there is none). */
  destroy(sid: string, callback?: Callback<void>): Promise<void>;

  /** Moves the expiry of an existing, unexpired session; never rewrites its data. */
  touch(
    sid: string,
    session: SessionData,
    callback?: Callback<void>,
  ): Promise<void>;

  /** Resolves to every unexpired session, each with its `id`. */
  all(): Promise<StoredSession[]>;
  /** Calls back with every unexpired session, each with its `id`. */
  all(callback: Callback<StoredSession[]>): Promise<void>;

  /** Resolves to the ids of every unexpired session. */
  ids(): Promise<string[]>;
  /** Calls back with the ids of every unexpired session. */
  ids(callback: Callback<string[]>): Promise<void>;

  /** Resolves to the number of unexpired sessions. */
  length(): Promise<number>;
  /** Calls back with the number of unexpired sessions. */
  length(callback: Callback<number>): Promise<void>;

  /** Deletes every session, expired or not. */
  clear(callback?: Callback<void>): Promise<void>;

  /**
   * Resolves to every unexpired session of `user` (its value at `userKey`
   * equals `String(user)`), each with its `id`, like `all()`. Rejects with a
   * `TypeError` when the store has no `userKey` or `user` is not a
   * non-empty string, a finite number or a bigint.
   *
   * @example
   * ```ts ignore
   * const store = new PostgresStore({ userKey: "passport.user" });
   * const devices = await store.sessionsOf(req.user.id);
   * ```
   */
  sessionsOf(user: SessionOwner): Promise<StoredSession[]>;
  /** Calls back with every unexpired session of `user`, each with its `id`. */
  sessionsOf(
    user: SessionOwner,
    callback: Callback<StoredSession[]>,
  ): Promise<void>;

  /**
   * Deletes every session of `user`, expired or not, but the one whose id is
   * `except` when given ("sign out other devices"); resolves to the number
   * deleted. The same `TypeError`s as {@linkcode PostgresStore.sessionsOf},
   * and nothing is deleted then.
   *
   * @example
   * ```ts ignore
   * await store.destroyOf(req.user.id, { except: req.sessionID });
   * ```
   */
  destroyOf(user: SessionOwner, options?: DestroyOfOptions): Promise<number>;
  /** Deletes every session of `user`, then calls back with the number deleted. */
  destroyOf(user: SessionOwner, callback: Callback<number>): Promise<void>;
  /** Deletes the sessions of `user` but `except`, then calls back with the number deleted. */
  destroyOf(
    user: SessionOwner,
    options: DestroyOfOptions | undefined,
    callback: Callback<number>,
  ): Promise<void>;

  /**
   * Deletes expired sessions now and restarts the prune timer. Resolves to
   * the number deleted (0 when another instance is pruning the table).
   */
  pruneSessions(): Promise<number>;
  /** Deletes expired sessions now, then calls back with the number deleted. */
  pruneSessions(callback: Callback<number>): Promise<void>;

  /**
   * Stops pruning (waiting for a prune in flight) and ends the connection if
   * the store opened it. Later calls fail with a "store is closed" error.
   */
  close(): Promise<void>;
  /** Like `close()`, then calls back. */
  close(callback: Callback<void>): Promise<void>;
}

/** The class {@linkcode connectPostgresSimple} returns. */
export interface PostgresStoreClass {
  /** Makes a store; throws a `TypeError` naming any option that is wrong. */
  new (options?: PostgresStoreOptions): PostgresStore;
}

/**
 * The express-session module, or anything that carries its `Store` class:
 * `session.session.Store` for older wrappers, and @fastify/session, whose
 * types declare its `Store` as an instance though it is the class.
 */
export type SessionModule =
  | { Store: typeof Store }
  | { session: { Store: typeof Store } }
  | { Store: object };
