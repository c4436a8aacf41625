/**
 * The Store class: each method checks its input and runs one call, which
 * `calls.ts` bounds in time and retries, and `settle.ts` hands to a callback
 * or a promise. SQL lives in `queries.ts` and `schema.ts`, expiry in
 * `expiry.ts`, options in `options.ts`, session input and output in
 * `session_data.ts`, pruning in `pruner.ts`.
 *
 * @module
 */
import type { SessionData, Store } from "express-session";
import type {
  Callback,
  PostgresStore as PostgresStoreInterface,
  PostgresStoreClass,
  PostgresStoreOptions,
  StoredSession,
} from "./types.ts";
import { parseOptions, type StoreConfig } from "./options.ts";
import {
  createQueries,
  type Database,
  isRefusedWrite,
  type Queries,
  type WriteResult,
} from "./queries.ts";
import { createTable, tableExists } from "./schema.ts";
import { expireSeconds, nowSeconds } from "./expiry.ts";
import { createPruner, type Pruner } from "./pruner.ts";
import {
  checkSid,
  parseSession,
  serialize,
  sidTooLong,
} from "./session_data.ts";
import { openConnection } from "./connection.ts";
import { settle } from "./settle.ts";
import { type Call, type Calls, createCalls } from "./calls.ts";
import { createServerClock, type ServerClock } from "./server_clock.ts";

/**
 * How many sessions' expiries a store with `touchAfter` remembers between a
 * `get` and the `touch` that follows it in the same request.
 */
const EXPIRIES_REMEMBERED = 10_000;

function closedError(): Error {
  return new Error("connect-postgres-simple: the store is closed");
}

/** A call's work, prepared once: checked input, then one attempt per try. */
type Attempt<T> = (call: Call) => Promise<T>;

/**
 * Makes the store class on top of express-session's `Store`.
 *
 * @param Base express-session's `Store` class.
 */
export function createStoreClass(Base: typeof Store): PostgresStoreClass {
  class PostgresStore extends Base implements PostgresStoreInterface {
    /** Lifetime in seconds of sessions whose cookie has no expiry. */
    ttl: number | undefined;
    readonly #config: StoreConfig;
    readonly #db: Database & { end?(): Promise<void> };
    readonly #queries: Queries;
    readonly #pruner: Pruner;
    readonly #calls: Calls;
    readonly #clock: ServerClock;
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
      if (config.postgres) {
        this.#db = { sql: config.postgres };
      } else {
        const sql = openConnection();
        this.#db = { sql, end: () => sql.end({ timeout: 5 }) };
      }
      this.#queries = createQueries(this.#db, config.names);
      this.#clock = createServerClock(() => this.#queries.clock());
      this.#tableReady = !config.createTableIfMissing;
      this.#calls = createCalls(config.callTimeoutMs, isRefusedWrite);
      this.#pruner = createPruner({
        intervalMs: config.pruneIntervalMs,
        randomizer: config.pruneRandomizer,
        batch: (now, limit) =>
          this.#calls.run(
            "pruneSessions",
            (call) =>
              this.#write(call, (cutoff) =>
                this.#queries.pruneBatch(
                  now,
                  limit,
                  cutoff,
                  call.writeBy - performance.now(),
                )),
          ),
        onError: (error) => config.errorLog("Failed to prune sessions:", error),
      });
    }

    override get(sid: string): Promise<SessionData | null>;
    override get(
      sid: string,
      callback: Callback<SessionData | null>,
    ): Promise<void>;
    override get(
      sid: string,
      callback?: Callback<SessionData | null>,
    ): Promise<SessionData | null> | Promise<void> {
      return settle(
        this.#run("get", () => {
          checkSid(sid);
          return (call) => this.#get(call, sid);
        }),
        callback,
      );
    }

    override set(sid: string, session: SessionData): Promise<void>;
    override set(
      sid: string,
      session: SessionData,
      callback: Callback<void>,
    ): Promise<void>;
    override set(
      sid: string,
      session: SessionData,
      callback?: Callback<void>,
    ): Promise<void> {
      return settle(
        this.#run("set", () => {
          checkSid(sid);
          const json = serialize(session);
          const expire = expireSeconds(session, this.ttl, Date.now());
          this.#expiries.delete(sid);
          return (call) =>
            this.#write(
              call,
              (cutoff) => this.#queries.set(sid, json, expire, cutoff),
            ).then(() => {}, (error) => {
              throw sidTooLong(sid, error) ?? error;
            });
        }),
        callback,
      );
    }

    override destroy(sid: string, callback?: Callback<void>): Promise<void> {
      return settle(
        this.#run("destroy", () => {
          checkSid(sid);
          this.#expiries.delete(sid);
          return (call) => this.#destroy(call, sid);
        }),
        callback,
      );
    }

    override touch(
      sid: string,
      session: SessionData,
      callback?: Callback<void>,
    ): Promise<void> {
      return settle(
        this.#run("touch", () => {
          checkSid(sid);
          if (this.#config.disableTouch) return () => this.#noWrite();
          const now = Date.now();
          const expire = expireSeconds(session, this.ttl, now);
          const touchAfter = this.#config.touchAfterSeconds;
          const seen = this.#expiries.get(sid);
          if (seen !== undefined) {
            this.#expiries.delete(sid);
            // The row's expiry as this request's get read it: no need to ask again.
            if (expire >= seen && expire - seen < touchAfter) {
              return () => this.#noWrite();
            }
          }
          return (call) =>
            this.#write(
              call,
              (cutoff) =>
                this.#queries.touch(
                  sid,
                  expire,
                  nowSeconds(now),
                  touchAfter,
                  cutoff,
                ),
            ).then(() => {});
        }),
        callback,
      );
    }

    override all(): Promise<StoredSession[]>;
    override all(callback: Callback<StoredSession[]>): Promise<void>;
    override all(
      callback?: Callback<StoredSession[]>,
    ): Promise<StoredSession[]> | Promise<void> {
      return settle(
        this.#run(
          "all",
          () => () =>
            this.#read(() => this.#queries.all(nowSeconds())).then((rows) => {
              const sessions: StoredSession[] = [];
              for (const [id, json] of rows) {
                const session = parseSession(json);
                if (session !== undefined) sessions.push({ ...session, id });
              }
              return sessions;
            }),
        ),
        callback,
      );
    }

    ids(): Promise<string[]>;
    ids(callback: Callback<string[]>): Promise<void>;
    ids(callback?: Callback<string[]>): Promise<string[]> | Promise<void> {
      return settle(
        this.#run(
          "ids",
          () => () => this.#read(() => this.#queries.ids(nowSeconds())),
        ),
        callback,
      );
    }

    override length(): Promise<number>;
    override length(callback: Callback<number>): Promise<void>;
    override length(
      callback?: Callback<number>,
    ): Promise<number> | Promise<void> {
      return settle(
        this.#run(
          "length",
          () => () => this.#read(() => this.#queries.length(nowSeconds())),
        ),
        callback,
      );
    }

    override clear(callback?: Callback<void>): Promise<void> {
      return settle(
        this.#run("clear", () => {
          this.#expiries.clear();
          return (call) =>
            this.#write(call, (cutoff) => this.#queries.clear(cutoff)).then(
              () => {},
            );
        }),
        callback,
      );
    }

    pruneSessions(): Promise<number>;
    pruneSessions(callback: Callback<number>): Promise<void>;
    pruneSessions(
      callback?: Callback<number>,
    ): Promise<number> | Promise<void> {
      const work = this.#closed
        ? Promise.reject(closedError())
        : this.#pruner.pruneNow();
      return settle(work, callback);
    }

    close(): Promise<void>;
    close(callback: Callback<void>): Promise<void>;
    close(callback?: Callback<void>): Promise<void> {
      this.#closing ??= (async () => {
        this.#closed = true;
        await this.#pruner.stop();
        await this.#db.end?.();
      })();
      return settle(this.#closing, callback);
    }

    /** Checks and prepares a call with `prepare`, then runs its attempts. */
    #run<T>(what: string, prepare: () => Attempt<T>): Promise<T> {
      let attempt: Attempt<T>;
      try {
        attempt = prepare();
      } catch (error) {
        return Promise.reject(error);
      }
      return this.#calls.run(what, attempt);
    }

    #get(call: Call, sid: string): Promise<SessionData | null> {
      const json = this.#read(() =>
        this.#config.touchAfterSeconds > 0
          ? this.#getRemembering(sid)
          : this.#queries.get(sid, nowSeconds())
      );
      return json.then((json) => {
        if (json === null) return null;
        const session = parseSession(json);
        if (session !== undefined) return session;
        return this.#destroy(call, sid).then(() => null);
      });
    }

    #getRemembering(sid: string): Promise<string | null> {
      return this.#queries.getWithExpiry(sid, nowSeconds()).then((row) => {
        this.#expiries.delete(sid);
        if (row === null) return null;
        if (this.#expiries.size >= EXPIRIES_REMEMBERED) {
          this.#expiries.delete(this.#expiries.keys().next().value!);
        }
        this.#expiries.set(sid, row[1]);
        return row[0];
      });
    }

    #destroy(call: Call, sid: string): Promise<void> {
      return this.#write(call, (cutoff) => this.#queries.destroy(sid, cutoff))
        .then(() => {});
    }

    /** A call that needs no statement: still refused once closed, still starts pruning. */
    #noWrite(): Promise<void> {
      if (this.#closed) return Promise.reject(closedError());
      this.#pruner.start();
      return Promise.resolve();
    }

    /** Every statement passes here: refuse when closed, start pruning, make the table once. */
    #ready(): Promise<void> | undefined {
      if (this.#closed) throw closedError();
      this.#pruner.start();
      // Not async: once the table is ready, the hot path allocates no promise here.
      return this.#tableReady ? undefined : this.#ensureTable();
    }

    #read<T>(statement: () => Promise<T>): Promise<T> {
      const ready = this.#ready();
      return ready === undefined ? statement() : ready.then(statement);
    }

    /**
     * Runs a write with its call's cutoff in the server's clock (asking the
     * server for its clock first when no recent answer told it), and learns
     * the server's clock from the answer.
     */
    #write<T extends WriteResult | number | null>(
      call: Call,
      statement: (cutoff: number) => Promise<T>,
    ): Promise<T> {
      const ready = this.#ready();
      const run = (cutoff: number) =>
        statement(cutoff).then((result) => {
          if (Array.isArray(result)) {
            this.#clock.observe(result[1], performance.now());
          }
          return result;
        });
      const withCutoff = () => {
        const cutoff = this.#clock.toServerSeconds(call.writeBy);
        return typeof cutoff === "number" ? run(cutoff) : cutoff.then(run);
      };
      return ready === undefined ? withCutoff() : ready.then(withCutoff);
    }

    #ensureTable(): Promise<void> {
      this.#tableCreation ??= (async () => {
        const sql = this.#db.sql;
        const names = this.#config.names;
        if (!(await tableExists(sql, names))) {
          // A backend that waited on the advisory lock may still hold a stale
          // "no such schema" catalog cache entry and fail with a unique
          // violation; a new transaction sees the other's schema and table.
          await createTable(sql, names).catch((error) => {
            if ((error as { code?: unknown })?.code !== "23505") throw error;
            return createTable(sql, names);
          });
        }
        this.#tableReady = true;
      })().catch((error) => {
        this.#tableCreation = undefined;
        throw error;
      });
      return this.#tableCreation;
    }
  }
  return PostgresStore;
}
