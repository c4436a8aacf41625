/**
 * The read cache's ears: one dedicated connection per store that LISTENs on
 * the table's notify channel and hands each notification to the cache. The
 * cache serves only while this connection is known to hear the table: from
 * a check that a notification sent through the store's own pool arrives
 * (which fails behind PgBouncer in transaction mode, or with a listening
 * connection to another database), until the connection closes or the same
 * check, repeated while idle (a heartbeat), fails: a connection cut
 * silently (a proxy or a network that drops it without telling) shows no
 * close, only silence. Then the cache stops serving and empties, and the
 * listener tries again on a new connection in the background, backing off
 * up to 5 s, until it hears the table again.
 *
 * The first call of a store waits for the first start; a start that fails
 * fails that call (with an error that says what to do) and the next call
 * tries again.
 *
 * @module
 */
import { randomUUID } from "node:crypto";
import { clearTimeout, setTimeout } from "node:timers";
import type { ErrorLog, PostgresSql } from "./types.ts";
import type { SessionCache } from "./cache.ts";
import { openListenerConnection } from "./connection.ts";
import { quoteIdentifier } from "./names.ts";

/** The payload prefix of the listener's own check notifications. */
const PROBE = "probe:";
/** The longest wait between two attempts to listen again. */
const MAX_RETRY_DELAY_MS = 5000;

/** What the listener needs from the table and the store's pool. */
export interface ListenTarget {
  /**
   * The table's notify channel, once its triggers are known to be there;
   * rejects with an error that says how to install them otherwise.
   */
  channel(): Promise<string>;
  /** Sends a notification through the store's pool. */
  notify(channel: string, payload: string): Promise<void>;
}

/** How to make a listener; see {@linkcode createCacheListener}. */
export interface CacheListenerOptions {
  /** The postgres.js `sql` whose connection settings the listener copies. */
  source: PostgresSql;
  cache: SessionCache;
  target: ListenTarget;
  /** How long a check notification may take to arrive. */
  probeTimeoutMs: number;
  /** How often to check again while listening. */
  heartbeatMs: number;
  errorLog: ErrorLog;
}

/** The listener of one store; see {@linkcode createCacheListener}. */
export interface CacheListener {
  /**
   * `undefined` once the listener has started (whether it hears the table
   * now or is trying to again); before that, the first start.
   */
  ready(): Promise<void> | undefined;
  /** Stops listening and ends the listener's connection; idempotent. */
  close(): Promise<void>;
}

/** The error of a listener that does not hear the notifications it should. */
export function cannotHearError(waitedMs: number): Error {
  return new Error(
    `connect-postgres-simple: cache: a notification sent on the session table's channel did not reach the listening connection within ${waitedMs} ms, so the cache could serve sessions changed elsewhere. Behind PgBouncer in transaction or statement mode LISTEN does not work: pass a postgres.js sql with a direct connection to the same database as \`cache: { listen: sql }\``,
  );
}

/** Makes the listener of one store; it connects on the first `ready()`. */
export function createCacheListener(
  options: CacheListenerOptions,
): CacheListener {
  const { source, cache, target, probeTimeoutMs, heartbeatMs, errorLog } =
    options;
  let sql: PostgresSql | undefined;
  let state: "new" | "up" | "down" | "closed" = "new";
  let first: Promise<void> | undefined;
  let closing: Promise<void> | undefined;
  /** Bumped each time the listening connection closes. */
  let generation = 0;
  let retrying = false;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** The LISTEN statement in flight, if any: close() waits for it. */
  let listening: Promise<unknown> | undefined;
  let heartbeat: ReturnType<typeof setTimeout> | undefined;
  const probes = new Map<string, () => void>();

  const connection = (): PostgresSql => {
    if (sql) return sql;
    const own: PostgresSql = openListenerConnection(source, {
      onnotify(_channel, payload) {
        if (sql !== own) return;
        if (payload.startsWith(PROBE)) probes.get(payload)?.();
        else cache.notified(payload);
      },
      onclose() {
        if (sql !== own) return;
        generation++;
        if (state === "up") down();
      },
    });
    return sql = own;
  };

  /** The cache may have missed a notification: stop serving, listen anew. */
  const down = () => {
    state = "down";
    cache.serve(false);
    if (heartbeat !== undefined) clearTimeout(heartbeat);
    retry();
  };

  /**
   * Checks, every `heartbeatMs` while listening, that the table's
   * notifications still arrive; if one does not, the connection is replaced.
   */
  const beat = (channel: string) => {
    heartbeat = setTimeout(() => {
      heartbeat = undefined;
      const at = generation;
      probe(channel).then(() => {
        if (state === "up" && generation === at) beat(channel);
      }, (error) => {
        if (state !== "up" || generation !== at) return;
        errorLog(
          "connect-postgres-simple: the cache's listening connection stopped hearing the table; sessions are read from the table until a new one does:",
          error,
        );
        const old = sql;
        sql = undefined;
        generation++;
        old?.end({ timeout: 0 }).catch(() => {});
        down();
      });
    }, heartbeatMs);
    heartbeat.unref();
  };

  const stillOpen = () => {
    if (state === "closed") {
      throw new Error("connect-postgres-simple: the store is closed");
    }
  };

  /** Sends a check notification through the pool and waits until it is heard. */
  const probe = async (channel: string) => {
    const token = `${PROBE}${randomUUID()}`;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const heard = new Promise<void>((resolve, reject) => {
      probes.set(token, resolve);
      timer = setTimeout(
        () => reject(cannotHearError(probeTimeoutMs)),
        probeTimeoutMs,
      );
      timer.unref();
    });
    try {
      await Promise.all([target.notify(channel, token), heard]);
    } finally {
      probes.delete(token);
      clearTimeout(timer);
    }
  };

  const listen = async () => {
    const at = generation;
    const channel = await target.channel();
    stillOpen();
    const statement = connection().unsafe(`LISTEN ${quoteIdentifier(channel)}`)
      .execute();
    listening = statement.catch(() => {});
    await statement;
    stillOpen();
    await probe(channel);
    stillOpen();
    if (generation !== at) {
      throw new Error(
        "connect-postgres-simple: cache: the listening connection closed while it started",
      );
    }
    state = "up";
    // Empty, and everything read before now is void: the cache starts over.
    cache.serve(true);
    beat(channel);
  };

  const retry = () => {
    if (retrying) return;
    retrying = true;
    let failures = 0;
    const attempt = () => {
      retryTimer = undefined;
      if (state !== "down") {
        retrying = false;
        return;
      }
      listen().then(() => {
        retrying = false;
      }, (error) => {
        if (state !== "down") {
          retrying = false;
          return;
        }
        if (failures++ === 0) {
          errorLog(
            "connect-postgres-simple: the cache lost its listening connection; sessions are read from the table until it is back:",
            error,
          );
        }
        retryTimer = setTimeout(
          attempt,
          Math.min(50 * 2 ** failures, MAX_RETRY_DELAY_MS),
        );
        retryTimer.unref();
      });
    };
    attempt();
  };

  return {
    ready() {
      if (state === "up" || state === "down") return undefined;
      first ??= listen().catch((error) => {
        first = undefined;
        throw error;
      });
      return first;
    },

    close() {
      closing ??= (async () => {
        state = "closed";
        if (retryTimer !== undefined) clearTimeout(retryTimer);
        if (heartbeat !== undefined) clearTimeout(heartbeat);
        cache.serve(false);
        // A connection that end() meets while it is still connecting opens
        // anyway: let the LISTEN in flight connect (or fail) first.
        await listening;
        await sql?.end({ timeout: 0 });
      })();
      return closing;
    },
  };
}
