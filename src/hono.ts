/**
 * The Hono adapter: a `Store` for hono-sessions on the session table
 * (`session_table.ts`) the express-session store uses, with the same
 * options, expiry column, pruning and command line. It imports nothing from
 * express-session, not even its types, so a Hono app needs neither the
 * package nor `@types/express-session`.
 *
 * @module
 */
import type { Sql } from "postgres";
import type { PostgresStoreOptions } from "./types.ts";
import type { CacheOptions } from "./cache_options.ts";
import { parseOptions } from "./options.ts";
import { DEFAULT_TTL_SECONDS } from "./expiry.ts";
import { openSessionTable, type SessionTable } from "./session_table.ts";

/**
 * A session as hono-sessions hands it to its store (its `SessionData`): the
 * values, each with its flash flag, and the session's own bookkeeping.
 */
export interface HonoSessionData {
  /** The session id; hono-sessions sets it after a read. Not stored. */
  _id?: string;
  /** The session's values by key. */
  _data: Record<string, { value: unknown; flash: boolean }>;
  /**
   * When the session expires (an ISO 8601 date, from hono-sessions'
   * `expireAfterSeconds`), or `null` when it sets none.
   */
  _expire: string | null;
  /** Set when the app deleted the session; hono-sessions then deletes it. */
  _delete: boolean;
  /** When the session was last used (ISO 8601), or `null`. */
  _accessed: string | null;
}

/**
 * The options of {@linkcode HonoSessionStore}: the express-session store's
 * options (see the README's table) less `disableTouch` and `touchAfter`,
 * which hono-sessions has no use for.
 */
export interface HonoSessionStoreOptions {
  /**
   * The postgres.js `sql` to run queries on, never ended by the store. Left
   * out, the store opens its own from `DATABASE_URL` (else the `PG*`
   * variables) and `close()` ends it.
   */
  // deno-lint-ignore no-explicit-any
  postgres?: Sql<any>;
  /**
   * Lifetime in seconds of a session without an expiry of its own, that is
   * when hono-sessions has no `expireAfterSeconds` (default 86400).
   */
  ttl?: number;
  /** Create the schema and table on first use when they are missing (default `false`). */
  createTableIfMissing?: boolean;
  /** The schema of the table (default: none, so the `search_path`). */
  schemaName?: string;
  /** The table's name (default `"session"`). */
  tableName?: string;
  /** Seconds between automatic prunes (default 60), or `false` for none. */
  pruneSessionInterval?: number | false;
  /**
   * Spreads each prune delay (default 50–150 % of the interval); `false`
   * for the exact interval, or a function `(delayMs) => delayMs`.
   */
  pruneSessionRandomizedInterval?: false | ((delayMs: number) => number);
  /** Where background errors go (default `console.error`). */
  errorLog?: (message: string, ...details: unknown[]) => void;
  /**
   * Seconds a call may wait for PostgreSQL (default 10) before it fails with
   * a `CallTimeoutError`; `false` for no limit.
   */
  callTimeout?: number | false;
  /**
   * Seconds a session lives after it was created, however active (needs
   * the table's `created` column: `createTableIfMissing`, or
   * `connect-postgres-simple migrate --created`).
   */
  maxLifetime?: number;
  /**
   * Serve reads from memory while the session is unchanged (default
   * `false`); see the read cache in the README. hono-sessions saves a session
   * on every request by default (autoExtendExpiration), so the cache spares
   * the read, not the write.
   */
  cache?: boolean | CacheOptions;
}

const NEVER_TOUCHED =
  "hono-sessions never touches a session: it saves it whenever it changed, and with autoExtendExpiration (its default) on every request";

/**
 * Every option of the express-session store: taken here (`true`), or
 * refused with the reason. The compiler checks the list against both
 * option types, so a new store option cannot go undecided.
 */
const HONO_OPTIONS = {
  postgres: true,
  ttl: true,
  createTableIfMissing: true,
  schemaName: true,
  tableName: true,
  pruneSessionInterval: true,
  pruneSessionRandomizedInterval: true,
  errorLog: true,
  callTimeout: true,
  disableTouch: NEVER_TOUCHED,
  touchAfter: NEVER_TOUCHED,
  maxLifetime: true,
  userKey:
    "hono-sessions' Store has no sessions of a user; the express-session store on the same table has sessionsOf and destroyOf",
  cache: true,
} as const satisfies
  & Record<keyof PostgresStoreOptions, true | string>
  & Record<keyof HonoSessionStoreOptions, true>;

function refuseOptions(options: unknown): void {
  if (typeof options !== "object" || options === null) return;
  for (const [key, taken] of Object.entries(HONO_OPTIONS)) {
    if (taken !== true && Object.hasOwn(options, key)) {
      throw new TypeError(
        `connect-postgres-simple/hono: option \`${key}\` does not apply to hono-sessions (${taken}); leave it out`,
      );
    }
  }
}

/**
 * The row's expiry in epoch seconds: the session's `_expire`, rounded up to
 * the second as the express-session store rounds a cookie's, else `ttl`
 * seconds from now.
 */
function expireSeconds(
  session: HonoSessionData,
  ttlSeconds: number | undefined,
): number {
  const expire = session._expire;
  if (expire === null || expire === undefined) {
    return Math.ceil(Date.now() / 1000 + (ttlSeconds ?? DEFAULT_TTL_SECONDS));
  }
  const ms = new Date(expire).valueOf();
  if (!Number.isFinite(ms)) {
    throw new TypeError(
      `connect-postgres-simple/hono: session _expire is not a valid date: ${
        String(expire)
      }`,
    );
  }
  return Math.ceil(ms / 1000);
}

/** The session as stored: without `_id`, which the row's `sid` already is. */
function withoutId(session: HonoSessionData): unknown {
  if (typeof session !== "object" || session === null || !("_id" in session)) {
    return session;
  }
  const { _id: _, ...stored } = session;
  return stored;
}

/**
 * Whether a stored session is one hono-sessions can use: an express-session
 * session on the same table (no `_data`) is not.
 */
function isHonoSession(value: unknown): value is HonoSessionData {
  const data = (value as { _data?: unknown } | null)?._data;
  return typeof data === "object" && data !== null && !Array.isArray(data);
}

/**
 * A PostgreSQL store for [hono-sessions](https://github.com/jcs224/hono_sessions):
 * pass it as the middleware's `store`. It keeps each session in the same
 * table as the express-session store (connect-pg-simple's `table.sql`),
 * with the session's expiry in `expire`, so Express and Hono apps can share
 * one table, its pruning and the command line.
 *
 * A session's row expires when the session does (`expireAfterSeconds`), or
 * `ttl` seconds after each save when hono-sessions sets no expiry. A read
 * never returns an expired row, nor a row that is not a hono-sessions
 * session (an express-session one on the same table): hono-sessions then
 * starts a new session under a new id, and the row is left alone.
 *
 * @example
 * ```ts ignore
 * import { Hono } from "hono";
 * import { type Session, sessionMiddleware } from "hono-sessions";
 * import postgres from "postgres";
 * import { HonoSessionStore } from "connect-postgres-simple/hono";
 *
 * const store = new HonoSessionStore({
 *   postgres: postgres(process.env.DATABASE_URL!),
 *   createTableIfMissing: true,
 * });
 * const app = new Hono<{ Variables: { session: Session<{ visits: number }> } }>();
 * app.use("*", sessionMiddleware({ store, expireAfterSeconds: 30 * 86400 }));
 * app.get("/", (c) => {
 *   const session = c.get("session");
 *   session.set("visits", (session.get("visits") ?? 0) + 1);
 *   return c.json({ visits: session.get("visits") });
 * });
 * ```
 */
export class HonoSessionStore {
  readonly #table: SessionTable<unknown>;
  readonly #ttl: number | undefined;

  /**
   * Makes a store; nothing is sent to PostgreSQL before the first call.
   *
   * @throws {TypeError} naming any option that is wrong, or that does not
   * apply to hono-sessions (`disableTouch`, `touchAfter`).
   */
  constructor(options?: HonoSessionStoreOptions) {
    refuseOptions(options);
    const config = parseOptions(options, (message) => console.warn(message));
    this.#ttl = config.ttl;
    this.#table = openSessionTable(config);
  }

  /**
   * Resolves to the unexpired session with this id, or `null` (also for an
   * id left out, or a row that holds no hono-sessions session).
   */
  getSessionById(sessionId?: string): Promise<HonoSessionData | null> {
    if (sessionId === undefined) return Promise.resolve(null);
    return this.#table.get(sessionId).then((session) =>
      isHonoSession(session) ? session : null
    );
  }

  /** Stores a new session (replacing any row with this id). */
  createSession(
    sessionId: string,
    initialData: HonoSessionData,
  ): Promise<void> {
    return this.#save(sessionId, initialData);
  }

  /** Stores a session's data and moves its row's expiry to the session's. */
  persistSessionData(
    sessionId: string,
    sessionData: HonoSessionData,
  ): Promise<void> {
    return this.#save(sessionId, sessionData);
  }

  /** Deletes a session (no error when there is none). */
  deleteSession(sessionId: string): Promise<void> {
    return this.#table.destroy(sessionId);
  }

  /**
   * Deletes expired sessions now, of Hono and Express apps alike, and
   * restarts the prune timer. Resolves to the number deleted (0 when
   * another instance is pruning the table).
   */
  pruneSessions(): Promise<number> {
    return this.#table.prune();
  }

  /**
   * Stops pruning (waiting for a prune in flight) and ends the connection if
   * the store opened it. Later calls fail with a "store is closed" error.
   */
  close(): Promise<void> {
    return this.#table.close();
  }

  #save(sessionId: string, session: HonoSessionData): Promise<void> {
    return this.#table.set(
      sessionId,
      withoutId(session),
      () => expireSeconds(session, this.#ttl),
    );
  }
}
