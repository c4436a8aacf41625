/**
 * One session table and everything a store does with it, whatever the
 * framework: the calls (bounded in time, retried, fenced by a cutoff), the
 * table creation, the server's clock, pruning, and the store's own pool.
 * The express-session store (`store.ts`) and the Hono adapter are thin
 * layers over it. Expiries come in as epoch seconds: each framework has
 * its own rule for them.
 *
 * @module
 */
import type { PostgresSql } from "./types.ts";
import type { StoreConfig } from "./options.ts";
import {
  type AnyWriteResult,
  createQueries,
  type Database,
  isRefusedWrite,
  type Queries,
} from "./queries.ts";
import {
  alterTable,
  buildIndexes,
  checkUserIndex,
  createTable,
  notifyStatus,
  readShape,
  type TableFeatures,
  type TableShape,
} from "./schema.ts";
import { ownerText } from "./user_key.ts";
import { nowSeconds } from "./expiry.ts";
import { createPruner, type Pruner } from "./pruner.ts";
import {
  checkSid,
  parseSession,
  serialize,
  sidTooLong,
} from "./session_data.ts";
import { openConnection } from "./connection.ts";
import { type Call, type Calls, createCalls } from "./calls.ts";
import { createServerClock, type ServerClock } from "./server_clock.ts";
import {
  createSessionCache,
  type SessionCache,
  type WriteChange,
} from "./cache.ts";
import { type CacheListener, createCacheListener } from "./cache_listener.ts";
import type { TableNames } from "./names.ts";

/**
 * How many sessions' expiries a table with `touchAfter` remembers between a
 * `get` and the `touch` that follows it in the same request.
 */
const EXPIRIES_REMEMBERED = 10_000;

/** The longest wait for the read cache's check notification. */
const PROBE_TIMEOUT_MS = 2000;
/**
 * The read cache checks its listener every 30 s, or twice per `maxAge` if
 * shorter, but not more than once a second.
 */
const MIN_HEARTBEAT_MS = 1000;
/** See {@linkcode MIN_HEARTBEAT_MS}. */
const MAX_HEARTBEAT_MS = 30_000;

/** The session id `destroyOf`'s options keep, if any; a `TypeError` for anything else. */
function exceptOf(options: unknown): string | undefined {
  if (options === undefined || options === null) return undefined;
  if (typeof options !== "object" || Array.isArray(options)) {
    throw new TypeError(
      `connect-postgres-simple: destroyOf's options must be an object like { except: sid }, got ${
        Array.isArray(options) ? "an array" : typeof options
      }`,
    );
  }
  const { except } = options as { except?: unknown };
  if (except !== undefined) checkSid(except);
  return except;
}

/** A word as a POSIX shell reads it, quoted when it has to be. */
function shellWord(word: string): string {
  return /^[\w./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The error of a call made after `close()`. */
export function closedError(): Error {
  return new Error("connect-postgres-simple: the store is closed");
}

/**
 * The operations on one session table whose sessions have the type `S`;
 * see {@linkcode openSessionTable}.
 */
export interface SessionTable<S> {
  /** The unexpired session with this id, or `null`. */
  get(sid: string): Promise<S | null>;
  /**
   * Inserts or replaces a session, expiring at `expire()` (epoch seconds;
   * asked once the id and session are known to be good).
   */
  set(sid: string, session: unknown, expire: () => number): Promise<void>;
  /** Deletes a session (no error when there is none). */
  destroy(sid: string): Promise<void>;
  /**
   * Moves an unexpired session's expiry to `expire()` (epoch seconds), unless
   * `touchAfter` says the move is too small to write, or `disableTouch`
   * says never to.
   */
  touch(sid: string, expire: () => number): Promise<void>;
  /** Every unexpired session, each with its `id`. */
  all(): Promise<(S & { id: string })[]>;
  /** The ids of every unexpired session. */
  ids(): Promise<string[]>;
  /** The number of unexpired sessions. */
  length(): Promise<number>;
  /** Deletes every session, expired or not. */
  clear(): Promise<void>;
  /**
   * Every unexpired session whose value at `userKey` is `String(user)`,
   * each with its `id`.
   */
  sessionsOf(user: unknown): Promise<(S & { id: string })[]>;
  /**
   * Deletes every session of `user`, expired or not, but the one whose id
   * is `options.except`; resolves to the count deleted.
   */
  destroyOf(user: unknown, options?: unknown): Promise<number>;
  /** Prunes now and restarts the prune timer; resolves to the count deleted. */
  prune(): Promise<number>;
  /** Stops pruning and ends the pool if the table opened it; idempotent. */
  close(): Promise<void>;
}

/** Opens a session table with validated options (see `options.ts`). */
export function openSessionTable<S>(config: StoreConfig): SessionTable<S> {
  let db: Database & { end?(): Promise<void> };
  if (config.postgres) {
    db = { sql: config.postgres };
  } else {
    const sql: PostgresSql = openConnection();
    db = { sql, end: () => sql.end({ timeout: 5 }) };
  }
  const queries: Queries = createQueries(db, config.names, {
    userKey: config.userKey,
    maxLifetime: config.maxLifetimeSeconds,
  });
  const features: TableFeatures = {
    userKey: config.userKey,
    created: config.maxLifetimeSeconds !== undefined,
    notify: config.cache !== undefined,
  };
  const calls: Calls = createCalls(config.callTimeoutMs, isRefusedWrite);
  const clock: ServerClock = createServerClock(() => queries.clock());
  /**
   * With `touchAfter`: the expiry `get` last read for a session, so the
   * `touch` at the end of the same request can skip even its round trip.
   */
  const expiries = new Map<string, number>();
  const cache: SessionCache | undefined = config.cache &&
    createSessionCache(config.cache);
  const listener: CacheListener | undefined = config.cache && cache &&
    createCacheListener({
      source: config.cache.listen ?? db.sql,
      cache,
      target: {
        channel: () => notifyChannel(db.sql, config.names),
        notify: (channel, payload) => queries.notify(channel, payload),
      },
      probeTimeoutMs: config.callTimeoutMs === false
        ? PROBE_TIMEOUT_MS
        : Math.min(PROBE_TIMEOUT_MS, config.callTimeoutMs / 2),
      heartbeatMs: Math.max(
        MIN_HEARTBEAT_MS,
        Math.min(MAX_HEARTBEAT_MS, config.cache.maxAgeMs / 2),
      ),
      errorLog: config.errorLog,
    });
  let tableReady = !config.createTableIfMissing;
  let tableCreation: Promise<void> | undefined;
  /** The indexes being built in the background, which `close()` waits for. */
  let indexing: Promise<void> | undefined;
  let closed = false;
  let closing: Promise<void> | undefined;

  const pruner: Pruner = createPruner({
    intervalMs: config.pruneIntervalMs,
    randomizer: config.pruneRandomizer,
    batch: (now, limit) =>
      explained(calls.run(
        "pruneSessions",
        (call) =>
          write(call, (cutoff) =>
            queries.pruneBatch(
              now,
              limit,
              cutoff,
              call.writeBy - performance.now(),
            )),
      )),
    onError: (error) => config.errorLog("Failed to prune sessions:", error),
  });

  /** Checks and prepares a call with `prepare`, then runs its attempts. */
  function run<T>(
    what: string,
    prepare: () => (call: Call) => Promise<T>,
  ): Promise<T> {
    let attempt: (call: Call) => Promise<T>;
    try {
      attempt = prepare();
    } catch (error) {
      return Promise.reject(error);
    }
    return explained(calls.run(what, attempt));
  }

  /** With `maxLifetime`, a call's error explained when the table lacks `created`. */
  function explained<T>(result: Promise<T>): Promise<T> {
    return features.created ? result.catch(explainMissingCreated) : result;
  }

  /** A store with `maxLifetime` on a table without `created`: say how to add it. */
  function explainMissingCreated(error: unknown): never {
    const { code, message } = error as { code?: unknown; message?: unknown };
    if (code !== "42703" || !/\bcreated\b/.test(String(message))) throw error;
    const { schema, table, qualified } = config.names;
    const flags = [
      ...(schema === undefined ? [] : ["--schema-name", schema]),
      ...(table === "session" ? [] : ["--table-name", table]),
    ].map(shellWord);
    throw new Error(
      `connect-postgres-simple: maxLifetime needs a "created" column, which ${qualified} lacks: run \`npx connect-postgres-simple migrate --created${
        flags.map((word) => ` ${word}`).join("")
      }\` (or set createTableIfMissing)`,
      { cause: error },
    );
  }

  /**
   * Every statement passes here: refuse when closed, start pruning, make the
   * table once, start the cache's listener once.
   */
  function ready(): Promise<void> | undefined {
    if (closed) throw closedError();
    pruner.start();
    // Not async: once the table is ready, the hot path allocates no promise here.
    if (!tableReady) {
      return listener
        ? ensureTable().then(() => listener.ready())
        : ensureTable();
    }
    return listener?.ready();
  }

  function read<T>(statement: () => Promise<T>): Promise<T> {
    const waiting = ready();
    return waiting === undefined ? statement() : waiting.then(statement);
  }

  /**
   * Runs a write with its call's cutoff in the server's clock (asking the
   * server for its clock first when no recent answer told it), and learns
   * the server's clock from the answer.
   */
  function write<T extends AnyWriteResult | number | null>(
    call: Call,
    statement: (cutoff: number) => Promise<T>,
  ): Promise<T> {
    const waiting = ready();
    const sent = (cutoff: number) =>
      statement(cutoff).then((result) => {
        if (Array.isArray(result)) clock.observe(result[1], performance.now());
        return result;
      });
    const withCutoff = () => {
      const cutoff = clock.toServerSeconds(call.writeBy);
      return typeof cutoff === "number" ? sent(cutoff) : cutoff.then(sent);
    };
    return waiting === undefined ? withCutoff() : waiting.then(withCutoff);
  }

  /** A call that needs no statement: still refused once closed, still starts pruning. */
  function noWrite(): Promise<void> {
    if (closed) return Promise.reject(closedError());
    pruner.start();
    return Promise.resolve();
  }

  function destroyRow(call: Call, sid: string): Promise<void> {
    cache?.drop(sid);
    const send = (cutoff: number) => queries.destroy(sid, cutoff);
    return write(call, cache ? tracked(sid, send, () => null) : send).then(
      () => {},
    );
  }

  /**
   * A write statement that tells the cache about its session: in flight from
   * just before it is sent, then what it did (`change`, from its answer) and
   * in which transaction.
   */
  function tracked<R extends AnyWriteResult>(
    sid: string,
    send: (cutoff: number) => Promise<R>,
    change: (result: R) => WriteChange,
  ): (cutoff: number) => Promise<R> {
    return (cutoff) => {
      const ticket = cache!.begin(sid);
      return send(cutoff).then((result) => {
        cache!.wrote(ticket, result[0] > 0 ? result[2] : null, change(result));
        return result;
      }, (error) => {
        cache!.failed(ticket, sid);
        throw error;
      });
    };
  }

  /** A cached session, as a fresh copy; `undefined` when not cached. */
  function fromCache(sid: string): S | undefined {
    const hit = cache!.lookup(sid, nowSeconds());
    if (hit === undefined) return undefined;
    if (config.touchAfterSeconds > 0) remember(sid, hit.expire);
    return parseSession<S>(hit.json);
  }

  /** A `get` on the table that the cache may keep. */
  function getCaching(call: Call, sid: string): Promise<S | null> {
    return read(() => {
      const ticket = cache!.begin(sid);
      return queries.getWithExpiry(sid, nowSeconds()).then((row) => {
        if (config.touchAfterSeconds > 0) remember(sid, row?.[1]);
        const session = row === null ? undefined : parseSession<S>(row[0]);
        if (session === undefined) {
          cache!.release(ticket);
          return row === null ? null : destroyRow(call, sid).then(() => null);
        }
        // Served from memory until the row's expiry or, with maxLifetime,
        // the end of the session's lifetime, whichever comes first: the
        // rule get applies to the table.
        cache!.read(ticket, row![0], row![1], row![2]);
        return session;
      }, (error) => {
        cache!.release(ticket);
        throw error;
      });
    });
  }

  function getRemembering(sid: string): Promise<string | null> {
    return queries.getWithExpiry(sid, nowSeconds()).then((row) => {
      remember(sid, row?.[1]);
      return row === null ? null : row[0];
    });
  }

  /** Remembers the expiry `get` read for a session (`undefined`: none). */
  function remember(sid: string, expire: number | undefined): void {
    expiries.delete(sid);
    if (expire === undefined) return;
    if (expiries.size >= EXPIRIES_REMEMBERED) {
      expiries.delete(expiries.keys().next().value!);
    }
    expiries.set(sid, expire);
  }

  /** Rows as sessions with their ids; an unreadable row is left out. */
  function withIds(rows: [string, string][]): (S & { id: string })[] {
    const sessions: (S & { id: string })[] = [];
    for (const [id, json] of rows) {
      const session = parseSession<S>(json);
      if (session !== undefined) sessions.push({ ...session, id });
    }
    return sessions;
  }

  function ensureTable(): Promise<void> {
    tableCreation ??= (async () => {
      const { sql } = db;
      const { names } = config;
      const shape = await readShape(sql, names);
      if (!shape.exists) {
        // A backend that waited on the advisory lock may still hold a stale
        // "no such schema" catalog cache entry and fail with a unique
        // violation; a new transaction sees the other's schema and table.
        await createTable(sql, names, features).catch((error) => {
          if ((error as { code?: unknown })?.code !== "23505") throw error;
          return createTable(sql, names, features);
        });
      } else {
        // The column and the triggers in the first call: statements need
        // them. The indexes only speed things up: in the background.
        const created = features.created && !shape.created;
        const notify = features.notify && !shape.notify;
        if (created || notify) {
          await alterTable(sql, names, { created, notify }, deadlineForDdl());
        }
        if (features.userKey || features.created) indexInBackground(shape);
      }
      tableReady = true;
    })().catch((error) => {
      tableCreation = undefined;
      throw error;
    });
    return tableCreation;
  }

  /** How long the first call lets an ALTER TABLE try for its lock. */
  function deadlineForDdl(): number {
    const limit = config.callTimeoutMs === false
      ? 10_000
      : config.callTimeoutMs;
    return performance.now() + limit / 2;
  }

  /**
   * Builds missing (or failed) indexes on a table in use, in the
   * background: `CREATE INDEX CONCURRENTLY` takes as long as the table is
   * large, and sessions are served meanwhile (`sessionsOf`, `destroyOf` and
   * pruning by lifetime by a scan of the table). Problems go to `errorLog`.
   */
  function indexInBackground(shape: TableShape): void {
    const { sql } = db;
    const { names, userKey } = config;
    const flags = [
      ...(userKey ? [`--user-key ${shellWord(userKey.join("."))}`] : []),
      ...(features.created ? ["--created"] : []),
    ].join(" ");
    const work = async () => {
      const missing = (features.created && shape.createdIndex !== "valid") ||
        (userKey !== undefined && shape.userIndex !== "valid");
      // A valid index of the owner index's name may index another path:
      // buildIndexes then says so, as an error for errorLog.
      const other = !missing && userKey !== undefined &&
        (await checkUserIndex(sql, names, userKey, shape)).userIndex ===
          "other";
      if (missing || other) {
        await buildIndexes(sql, names, features, { waitMs: 0 });
      }
    };
    indexing = work()
      .catch((error) =>
        config.errorLog(
          `Failed to make the indexes of ${names.qualified} (run \`npx connect-postgres-simple migrate ${flags}\`):`,
          error,
        )
      )
      .finally(() => indexing = undefined);
  }

  return {
    get(sid) {
      if (cache !== undefined) {
        const hit = fromCache(sid);
        if (hit !== undefined) return Promise.resolve(hit);
        return run("get", () => {
          checkSid(sid);
          return (call) => getCaching(call, sid);
        });
      }
      return run("get", () => {
        checkSid(sid);
        return (call) =>
          read(() =>
            config.touchAfterSeconds > 0
              ? getRemembering(sid)
              : queries.get(sid, nowSeconds())
          ).then((json) => {
            if (json === null) return null;
            const session = parseSession<S>(json);
            if (session !== undefined) return session;
            return destroyRow(call, sid).then(() => null);
          });
      });
    },

    set(sid, session, expire) {
      return run("set", () => {
        checkSid(sid);
        const json = serialize(session);
        const at = expire();
        expiries.delete(sid);
        const send = (cutoff: number) => queries.set(sid, json, at, cutoff);
        return (call) =>
          write(
            call,
            cache
              ? tracked(sid, send, ([, , , written]) => ({
                json,
                expire: written ?? at,
              }))
              : send,
          )
            .then(() => {}, (error) => {
              throw sidTooLong(sid, error) ?? error;
            });
      });
    },

    destroy(sid) {
      return run("destroy", () => {
        checkSid(sid);
        expiries.delete(sid);
        return (call) => destroyRow(call, sid);
      });
    },

    touch(sid, expiry) {
      return run("touch", () => {
        checkSid(sid);
        if (config.disableTouch) return noWrite;
        const expire = expiry();
        const touchAfter = config.touchAfterSeconds;
        const seen = expiries.get(sid);
        if (seen !== undefined) {
          expiries.delete(sid);
          // The row's expiry as this request's get read it: no need to ask again.
          if (expire >= seen && expire - seen < touchAfter) return noWrite;
        }
        const now = nowSeconds();
        const send = (cutoff: number) =>
          queries.touch(sid, expire, now, touchAfter, cutoff);
        return (call) =>
          write(
            call,
            cache
              ? tracked(sid, send, ([, , , written]) => ({
                expire: written ?? expire,
              }))
              : send,
          ).then(() => {});
      });
    },

    all() {
      return run(
        "all",
        () => () => read(() => queries.all(nowSeconds())).then(withIds),
      );
    },

    ids() {
      return run("ids", () => () => read(() => queries.ids(nowSeconds())));
    },

    length() {
      return run(
        "length",
        () => () => read(() => queries.length(nowSeconds())),
      );
    },

    clear() {
      return run("clear", () => {
        expiries.clear();
        cache?.dropAll();
        return (call) =>
          write(call, (cutoff) => queries.clear(cutoff)).then(() => {
            // Whatever was read while the rows were being deleted is void.
            cache?.dropAll();
          });
      });
    },

    sessionsOf(user) {
      return run("sessionsOf", () => {
        const owner = ownerText(user, config.userKey, "sessionsOf");
        return () =>
          read(() => queries.sessionsOf(owner, nowSeconds())).then(withIds);
      });
    },

    destroyOf(user, options) {
      return run("destroyOf", () => {
        const owner = ownerText(user, config.userKey, "destroyOf");
        const except = exceptOf(options);
        expiries.clear();
        return (call) =>
          write(
            call,
            (cutoff) => queries.destroyOf(owner, except ?? null, cutoff),
          ).then(([count, , transaction, deleted]) => {
            // Its sessions leave this store's cache at once (the others'
            // hear of them from the trigger), and whatever was read of them
            // while they were being deleted is void.
            if (count > 0) cache?.deleted(transaction, deleted);
            return count;
          });
      });
    },

    prune() {
      return closed ? Promise.reject(closedError()) : pruner.pruneNow();
    },

    close() {
      closing ??= (async () => {
        closed = true;
        await Promise.all([pruner.stop(), listener?.close(), indexing]);
        await db.end?.();
      })();
      return closing;
    },
  };
}

/**
 * The table's notify channel, for the read cache; an error that names the
 * command to run when the table lacks its triggers.
 */
async function notifyChannel(
  sql: PostgresSql,
  names: TableNames,
): Promise<string> {
  const status = await notifyStatus(sql, names);
  if (status === null) {
    throw new Error(
      `connect-postgres-simple: table ${names.qualified} does not exist: create it with table.sql, \`connect-postgres-simple create-table\` or createTableIfMissing: true`,
    );
  }
  if (!status.installed) {
    const flags = [
      names.schema === undefined
        ? ""
        : ` --schema-name ${shellWord(names.schema)}`,
      names.table === "session"
        ? ""
        : ` --table-name ${shellWord(names.table)}`,
    ].join("");
    throw new Error(
      `connect-postgres-simple: cache: table ${names.qualified} has no notify triggers, so the cache would not hear of changes made elsewhere: run \`npx connect-postgres-simple migrate --notify${flags}\` once (or set createTableIfMissing: true)`,
    );
  }
  return status.channel;
}
