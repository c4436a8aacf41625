/**
 * The Store class: each method checks its input, runs one query and settles.
 * SQL lives in `queries.ts`, expiry in `expiry.ts`, options in `options.ts`,
 * session input and output in `session_data.ts`, pruning in `pruner.ts`.
 *
 * @module
 */
import type { SessionData, Store } from "express-session";
import type {
  Callback,
  PostgresSql,
  PostgresStoreClass,
  PostgresStoreOptions,
  StoredSession,
} from "./types.ts";
import {
  MAX_TIMER_DELAY_MS,
  parseOptions,
  type StoreConfig,
} from "./options.ts";
import { createQueries, type Queries } from "./queries.ts";
import { expireSeconds, nowSeconds } from "./expiry.ts";
import { createPruner, pruneInBatches, type Pruner } from "./pruner.ts";
import {
  checkSid,
  parseSession,
  serialize,
  sidTooLong,
} from "./session_data.ts";
import { openConnection } from "./connection.ts";
import { settle } from "./settle.ts";
import { createDeadlines, type Deadlines } from "./deadline.ts";

/**
 * How many sessions' expiries a store with `touchAfter` remembers between a
 * `get` and the `touch` that follows it in the same request.
 */
const EXPIRIES_REMEMBERED = 10_000;

function closedError(): Error {
  return new Error("connect-postgres-simple: the store is closed");
}

/**
 * Makes the store class on top of express-session's `Store`.
 *
 * @param Base express-session's `Store` class.
 */
export function createStoreClass(Base: typeof Store): PostgresStoreClass {
  class PostgresStore extends Base {
    /** Lifetime in seconds of sessions whose cookie has no expiry. */
    ttl: number | undefined;
    readonly #config: StoreConfig;
    readonly #sql: PostgresSql;
    readonly #ownsSql: boolean;
    readonly #queries: Queries;
    readonly #pruner: Pruner;
    readonly #deadlines: Deadlines;
    /**
     * With `touchAfter`: the expiry `get` last read for a session, so the
     * `touch` at the end of the same request can skip even its round trip.
     */
    readonly #expiries = new Map<string, number>();
    #tableReady: boolean;
    #tableCreation: Promise<void> | undefined;
    #closed = false;
    #closing: Promise<void> | undefined;

    constructor(options?: PostgresStoreOptions) {
      const config = parseOptions(options, (message) => console.warn(message));
      super();
      this.#config = config;
      this.ttl = config.ttl;
      this.#ownsSql = config.postgres === undefined;
      this.#sql = config.postgres ?? openConnection();
      this.#queries = createQueries(this.#sql, config.names);
      this.#tableReady = !config.createTableIfMissing;
      this.#deadlines = createDeadlines(config.callTimeoutMs);
      this.#pruner = createPruner(
        () => this.#pruneExpired(),
        () => this.#nextPruneDelay(),
        (error) => config.errorLog("Failed to prune sessions:", error),
      );
    }

    override get(
      sid: string,
      callback?: Callback<SessionData | null>,
    ): Promise<unknown> {
      return settle(this.#bounded(this.#get(sid), "get"), callback);
    }

    override set(
      sid: string,
      session: SessionData,
      callback?: Callback<void>,
    ): Promise<void> {
      return settle(this.#bounded(this.#set(sid, session), "set"), callback);
    }

    override destroy(sid: string, callback?: Callback<void>): Promise<void> {
      return settle(this.#bounded(this.#destroy(sid), "destroy"), callback);
    }

    override touch(
      sid: string,
      session: SessionData,
      callback?: Callback<void>,
    ): Promise<void> {
      return settle(
        this.#bounded(this.#touch(sid, session), "touch"),
        callback,
      );
    }

    override all(callback?: Callback<StoredSession[]>): Promise<unknown> {
      return settle(this.#bounded(this.#all(), "all"), callback);
    }

    ids(callback?: Callback<string[]>): Promise<unknown> {
      return settle(this.#bounded(this.#ids(), "ids"), callback);
    }

    override length(callback?: Callback<number>): Promise<unknown> {
      return settle(this.#bounded(this.#length(), "length"), callback);
    }

    override clear(callback?: Callback<void>): Promise<void> {
      return settle(this.#bounded(this.#clear(), "clear"), callback);
    }

    pruneSessions(callback?: Callback<number>): Promise<unknown> {
      const work = this.#closed
        ? Promise.reject(closedError())
        : this.#pruner.pruneNow();
      return settle(work, callback);
    }

    close(): Promise<void> {
      this.#closing ??= (async () => {
        this.#closed = true;
        await this.#pruner.stop();
        if (this.#ownsSql) await this.#sql.end({ timeout: 5 });
      })();
      return this.#closing;
    }

    async #get(sid: string): Promise<SessionData | null> {
      checkSid(sid);
      const queries = await this.#use();
      const json = this.#config.touchAfterSeconds > 0
        ? await this.#getRemembering(queries, sid)
        : await queries.get(sid, nowSeconds());
      if (json === null) return null;
      const session = parseSession(json);
      if (session !== undefined) return session;
      await queries.destroy(sid);
      return null;
    }

    async #set(sid: string, session: SessionData): Promise<void> {
      checkSid(sid);
      const json = serialize(session);
      const expire = expireSeconds(session, this.ttl, Date.now());
      this.#expiries.delete(sid);
      const queries = await this.#use();
      try {
        await queries.set(sid, json, expire);
      } catch (error) {
        throw sidTooLong(sid, error) ?? error;
      }
    }

    async #getRemembering(
      queries: Queries,
      sid: string,
    ): Promise<string | null> {
      const row = await queries.getWithExpiry(sid, nowSeconds());
      this.#expiries.delete(sid);
      if (row === null) return null;
      if (this.#expiries.size >= EXPIRIES_REMEMBERED) {
        this.#expiries.delete(this.#expiries.keys().next().value!);
      }
      this.#expiries.set(sid, row[1]);
      return row[0];
    }

    async #destroy(sid: string): Promise<void> {
      checkSid(sid);
      this.#expiries.delete(sid);
      await (await this.#use()).destroy(sid);
    }

    async #touch(sid: string, session: SessionData): Promise<void> {
      checkSid(sid);
      if (this.#config.disableTouch) {
        if (this.#closed) throw closedError();
        this.#pruner.start();
        return;
      }
      const now = Date.now();
      const expire = expireSeconds(session, this.ttl, now);
      const touchAfter = this.#config.touchAfterSeconds;
      const seen = this.#expiries.get(sid);
      if (seen !== undefined) {
        this.#expiries.delete(sid);
        // The row's expiry as this request's get read it: no need to ask again.
        if (expire >= seen && expire - seen < touchAfter) {
          if (this.#closed) throw closedError();
          return;
        }
      }
      const queries = await this.#use();
      await queries.touch(
        sid,
        expire,
        nowSeconds(now),
        touchAfter,
      );
    }

    async #all(): Promise<StoredSession[]> {
      const rows = await (await this.#use()).all(nowSeconds());
      const sessions: StoredSession[] = [];
      for (const [id, json] of rows) {
        const session = parseSession(json);
        if (session !== undefined) sessions.push({ ...session, id });
      }
      return sessions;
    }

    async #ids(): Promise<string[]> {
      return await (await this.#use()).ids(nowSeconds());
    }

    async #length(): Promise<number> {
      return await (await this.#use()).length(nowSeconds());
    }

    async #clear(): Promise<void> {
      this.#expiries.clear();
      await (await this.#use()).clear();
    }

    /** Fails `work` with a CallTimeoutError once it has run past `callTimeout`. */
    #bounded<T>(work: Promise<T>, what: string): Promise<T> {
      return this.#deadlines.bound(work, what);
    }

    /** Every call passes here: refuse when closed, start pruning, make the table once. */
    #use(): Queries | Promise<Queries> {
      if (this.#closed) throw closedError();
      this.#pruner.start();
      // Not async: once the table is ready, the hot path allocates no promise here.
      if (this.#tableReady) return this.#queries;
      return this.#ensureTable().then(() => this.#queries);
    }

    #ensureTable(): Promise<void> {
      this.#tableCreation ??= this.#bounded(
        (async () => {
          const queries = this.#queries;
          if (!(await queries.tableExists())) {
            // A backend that waited on the advisory lock may still hold a stale
            // "no such schema" catalog cache entry and fail with a unique
            // violation; a new transaction sees the other's schema and table.
            await queries.createTable().catch((error) => {
              if ((error as { code?: unknown })?.code !== "23505") throw error;
              return queries.createTable();
            });
          }
          this.#tableReady = true;
        })(),
        "createTableIfMissing",
      ).catch((error) => {
        this.#tableCreation = undefined;
        throw error;
      });
      return this.#tableCreation;
    }

    async #pruneExpired(): Promise<number> {
      if (!this.#tableReady) await this.#ensureTable();
      // Each batch is limited, not the whole prune: a large backlog may take long.
      const queries = this.#queries;
      const bounded = {
        pruneBatch: (now: number, limit: number) =>
          this.#bounded(queries.pruneBatch(now, limit), "pruneSessions"),
      };
      return await pruneInBatches(bounded, nowSeconds(), () => this.#closed);
    }

    #nextPruneDelay(): number | false {
      const interval = this.#config.pruneIntervalMs;
      if (interval === false) return false;
      const delay = this.#config.pruneDelay(interval);
      if (typeof delay !== "number" || !Number.isFinite(delay) || delay < 0) {
        return Math.min(interval, MAX_TIMER_DELAY_MS);
      }
      return Math.min(delay, MAX_TIMER_DELAY_MS);
    }
  }
  return PostgresStore as unknown as PostgresStoreClass;
}
