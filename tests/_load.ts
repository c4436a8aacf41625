/**
 * A load of store calls for the fault tests: workers on two stores (the
 * app's own postgres.js `sql`, and the store's own pool) each set, get and
 * touch sessions of their own while a test does something to the server,
 * and every call's outcome is kept: when it started and ended, and how.
 *
 * @module
 */
import assert from "node:assert/strict";
import process from "node:process";
import postgres from "postgres";
import { PostgresStoreClass, sessionData, viaCallback } from "./_helpers.ts";
import type { PostgresSql, PostgresStore } from "../mod.ts";

/**
 * The connection settings docs/production.md ("Timeouts") recommends for an
 * app's own `sql`, which are also the store's own pool's defaults: give up
 * on a connection attempt after 5 s, wait at most 1 s between attempts, no
 * array-type query on each new connection (see docs/production.md).
 */
export const RECOMMENDED = {
  onnotice: () => {},
  fetch_types: false,
  connect_timeout: 5,
  backoff: (retries: number): number => Math.min(0.05 * 2 ** retries, 1),
} as const;

/** The stores' `callTimeout` in the fault tests. */
export const CALL_TIMEOUT_S = 6;

/** How long any call may take, whatever the database does: its limit and a margin for a busy machine. */
export const CALL_BOUND_MS = CALL_TIMEOUT_S * 1000 + 2_000;

/** How one store call ended, as its callback told. */
export interface Outcome {
  op: string;
  /** Which store made the call. */
  store: string;
  ok: boolean;
  error?: Error;
  result?: unknown;
  /** `performance.now()` when it was made. */
  started: number;
  /** When the callback fired; `Infinity` while it has not. */
  ended: number;
  /** The callback had not fired within CALL_BOUND_MS. */
  late: boolean;
}

/** Collects unhandled rejections while a test runs. */
export function watchUnhandled(): { seen: unknown[]; stop(): void } {
  const seen: unknown[] = [];
  const listener = (reason: unknown) => seen.push(reason);
  process.on("unhandledRejection", listener);
  return { seen, stop: () => process.off("unhandledRejection", listener) };
}

/**
 * Makes a call with a callback; resolves when the callback fires or, with
 * `late: true`, once CALL_BOUND_MS has passed without it (the outcome is then
 * completed if the callback fires later, so its real latency is reported). A
 * call that throws synchronously is a failure of the store, recorded as such.
 */
export function track(
  store: string,
  op: string,
  call: (callback: (error: Error | null, result?: unknown) => void) => unknown,
): Promise<Outcome> {
  const outcome: Outcome = {
    op,
    store,
    ok: false,
    started: performance.now(),
    ended: Infinity,
    late: false,
  };
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      outcome.late = true;
      resolve(outcome);
    }, CALL_BOUND_MS);
    const done = (error: Error | null, result?: unknown) => {
      clearTimeout(timer);
      Object.assign(outcome, {
        ok: error === null,
        error: error ?? undefined,
        result,
        ended: performance.now(),
      });
      resolve(outcome);
    };
    try {
      call(done);
    } catch (thrown) {
      done(new Error(`${op} threw synchronously: ${thrown}`));
    }
  });
}

/** Polls `condition` until it holds, failing after `ms`. */
export async function waitFor(
  condition: () => boolean,
  ms: number,
  what: string,
): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The error's code, else the start of its message, for a summary. */
export function errorKind(error: Error): string {
  const code = (error as Error & { code?: string }).code;
  return code ?? error.message.slice(0, 60);
}

/** `ok ×n` and `code ×n` for a set of outcomes. */
export function summary(outcomes: Outcome[]): string {
  const kinds = new Map<string, number>();
  for (const o of outcomes) {
    const kind = o.ok ? "ok" : o.error ? errorKind(o.error) : "no answer";
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  return [...kinds].map(([k, n]) => `${k} ×${n}`).join(", ");
}

/** A store that opens its own connection, from a `DATABASE_URL` of our choosing. */
export function ownConnectionStore(
  url: string,
  tableName: string,
): PostgresStore {
  const saved = process.env.DATABASE_URL;
  process.env.DATABASE_URL = url;
  try {
    return new PostgresStoreClass({
      tableName,
      createTableIfMissing: true,
      pruneSessionInterval: false,
      callTimeout: CALL_TIMEOUT_S,
    });
  } finally {
    process.env.DATABASE_URL = saved;
  }
}

/** The names of the two stores {@linkcode twoStores} makes, in order. */
export const STORE_NAMES = ["app sql", "own pool"] as const;

/** The two ways a store gets its connection: the app's `sql`, or its own pool. */
export function twoStores(
  url: string,
  table: string,
): { sql: PostgresSql; stores: PostgresStore[] } {
  const sql = postgres(url, { ...RECOMMENDED, max: 4 });
  const stores = [
    new PostgresStoreClass({
      postgres: sql,
      tableName: table,
      createTableIfMissing: true,
      pruneSessionInterval: false,
      callTimeout: CALL_TIMEOUT_S,
    }),
    ownConnectionStore(url, table),
  ];
  return { sql, stores };
}

/** A running load; see {@linkcode startLoad}. */
export interface Load {
  /** Every call so far, in the order they ended. */
  outcomes: Outcome[];
  /** The successful calls of `store` made at or after `since`. */
  succeededSince(store: string, since: number): Outcome[];
  /** Stops the workers and waits for their last calls. */
  stop(): Promise<void>;
  /**
   * After `stop()`: asserts that no get read an acknowledged session as
   * missing, and that every acknowledged set is there, read through a new
   * connection to `url`.
   */
  verify(url: string, table: string): Promise<void>;
}

/**
 * Starts three workers per store, fewer than either pool's connections,
 * each setting new sessions and reading and touching the last one it was
 * told was stored.
 */
export function startLoad(stores: PostgresStore[]): Load {
  const outcomes: Outcome[] = [];
  const acknowledged = new Map<string, unknown>();
  const lost: string[] = [];
  let stop = false;

  const worker = async (s: number, w: number) => {
    const store = stores[s];
    const call = async (
      op: string,
      fn: (cb: (error: Error | null, result?: unknown) => void) => unknown,
    ) => {
      const outcome = await track(STORE_NAMES[s], op, fn);
      outcomes.push(outcome);
      return outcome;
    };
    let last: string | undefined;
    for (let n = 0; !stop; n++) {
      const sid = `s${s}w${w}-${n}`;
      const data = sessionData({ s, w, n });
      if ((await call("set", (cb) => store.set(sid, data, cb))).ok) {
        acknowledged.set(sid, JSON.parse(JSON.stringify(data)));
        last = sid;
      }
      if (last === undefined) continue;
      const known = last;
      const get = await call("get", (cb) => store.get(known, cb));
      if (get.ok && get.result === null) lost.push(known);
      await call(
        "touch",
        (cb) => store.touch(known, sessionData({}, 7200), cb),
      );
    }
  };
  const running = stores.flatMap((_, s) => [0, 1, 2].map((w) => worker(s, w)));

  return {
    outcomes,
    succeededSince: (store, since) =>
      outcomes.filter((o) => o.store === store && o.ok && o.started >= since),
    async stop() {
      stop = true;
      await Promise.allSettled(running);
    },
    async verify(url, table) {
      assert.deepEqual(lost, [], "no acknowledged session reads as missing");
      const reader = postgres(url, { ...RECOMMENDED, max: 4 });
      const check = new PostgresStoreClass({
        postgres: reader,
        tableName: table,
        pruneSessionInterval: false,
      });
      try {
        const missing: string[] = [];
        const entries = [...acknowledged];
        for (let i = 0; i < entries.length; i += 50) {
          await Promise.all(
            entries.slice(i, i + 50).map(async ([sid, data]) => {
              const { error, result } = await viaCallback((cb) =>
                check.get(sid, cb)
              );
              assert.equal(error, null);
              if (JSON.stringify(result) !== JSON.stringify(data)) {
                missing.push(sid);
              }
            }),
          );
        }
        assert.deepEqual(
          missing,
          [],
          `all ${acknowledged.size} acknowledged sets survive`,
        );
      } finally {
        await check.close();
        await reader.end({ timeout: 1 });
      }
    },
  };
}
