import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { createServer } from "node:net";
import postgres from "postgres";
import {
  PostgresStoreClass,
  sessionData,
  storeTest,
  viaCallback,
} from "./_helpers.ts";

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A store on a port nobody listens on: its calls retry the refused
 * connection until their `callTimeout` (0.5 s), then fail with
 * CALL_TIMEOUT, naming the refusal as their cause.
 */
async function unreachableStore() {
  const sql = postgres({
    host: "127.0.0.1",
    port: await closedPort(),
    connect_timeout: 5,
    backoff: () => 0.05,
  });
  const store = new PostgresStoreClass({
    postgres: sql,
    pruneSessionInterval: false,
    callTimeout: 0.5,
  });
  return { sql, store };
}

/** A call that gave up on an unreachable database, as its error tells. */
function refusedUntilTimeout(error: unknown): boolean {
  const { code, cause, message } = error as {
    code?: unknown;
    cause?: { code?: unknown };
    message?: unknown;
  };
  return code === "CALL_TIMEOUT" && cause?.code === "ECONNREFUSED" &&
    /ECONNREFUSED/.test(String(message));
}

storeTest(
  "every method works with a callback as well as a promise",
  async ({ store }) => {
    const s = store();
    const data = sessionData({ n: 1 });
    assert.deepEqual(await viaCallback((cb) => s.set("a", data, cb)), {
      error: null,
      result: undefined,
      calls: 1,
    });
    const got = await viaCallback((cb) => s.get("a", cb));
    assert.deepEqual(got.result, JSON.parse(JSON.stringify(data)));
    assert.equal(
      (await viaCallback((cb) => s.touch("a", data, cb))).error,
      null,
    );
    assert.deepEqual((await viaCallback((cb) => s.ids(cb))).result, ["a"]);
    assert.equal((await viaCallback((cb) => s.length(cb))).result, 1);
    assert.equal(
      (await viaCallback<{ id: string }[]>((cb) => s.all(cb))).result?.[0].id,
      "a",
    );
    assert.equal((await viaCallback((cb) => s.destroy("a", cb))).error, null);
    assert.equal((await viaCallback((cb) => s.clear(cb))).error, null);
    assert.equal((await viaCallback((cb) => s.get("a", cb))).result, null);
  },
);

storeTest(
  "express-session's own helpers work on top of get and destroy",
  async ({ store }) => {
    const s = store();
    await s.set("a", sessionData({ n: 1 }));
    const loaded = await viaCallback<{ n: number }>((cb) =>
      s.load("a", cb as never)
    );
    assert.equal(loaded.error, null);
    assert.equal(loaded.result?.n, 1);
  },
);

test("an unreachable database: the callback gets the error, the promise resolves", async () => {
  const { sql, store } = await unreachableStore();
  try {
    let outcome: unknown = "pending";
    const result = await viaCallback((cb) => {
      store.get("sid", cb).then(
        () => outcome = "resolved",
        () => outcome = "rejected",
      );
    });
    assert.ok(result.error instanceof Error);
    assert.ok(refusedUntilTimeout(result.error), String(result.error));
    assert.equal(result.calls, 1);
    await Promise.resolve();
    assert.equal(outcome, "resolved");
  } finally {
    await store.close();
    await sql.end({ timeout: 1 });
  }
});

test("an unreachable database: without a callback the promise rejects", async () => {
  const { sql, store } = await unreachableStore();
  try {
    await assert.rejects(store.set("sid", sessionData()), refusedUntilTimeout);
    await assert.rejects(store.length(), refusedUntilTimeout);
    await assert.rejects(store.pruneSessions(), refusedUntilTimeout);
  } finally {
    await store.close();
    await sql.end({ timeout: 1 });
  }
});

test("a call nobody waits for never becomes an unhandled rejection", async () => {
  const { sql, store } = await unreachableStore();
  const unhandled: unknown[] = [];
  const listener = (reason: unknown) => unhandled.push(reason);
  process.on("unhandledRejection", listener);
  try {
    store.destroy("sid"); // as express-session does: no callback, promise dropped
    store.touch("sid", sessionData());
    // Started after the two above, so it runs out of time last.
    await store.get("other").catch(() => {});
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off("unhandledRejection", listener);
    await store.close();
    await sql.end({ timeout: 1 });
  }
});

storeTest(
  "after close every call fails with a clear error",
  async ({ store }) => {
    const s = store();
    await s.set("a", sessionData());
    await s.close();
    await s.close(); // closing twice is fine
    const closed = /connect-postgres-simple: the store is closed/;
    await assert.rejects(s.get("a"), closed);
    await assert.rejects(s.set("a", sessionData()), closed);
    await assert.rejects(s.touch("a", sessionData()), closed);
    await assert.rejects(s.destroy("a"), closed);
    await assert.rejects(s.all(), closed);
    await assert.rejects(s.ids(), closed);
    await assert.rejects(s.length(), closed);
    await assert.rejects(s.clear(), closed);
    await assert.rejects(s.pruneSessions(), closed);
    assert.match(
      String((await viaCallback((cb) => s.get("a", cb))).error),
      closed,
    );
  },
);

storeTest(
  "close takes a callback like every other method, called once after the store has closed",
  async ({ store }) => {
    const s = store();
    await s.set("a", sessionData());
    const first = await viaCallback((cb) => s.close(cb));
    assert.deepEqual(first, { error: null, result: undefined, calls: 1 });
    await assert.rejects(s.get("a"), /the store is closed/);
    // Closing again calls back again, at once.
    assert.deepEqual(await viaCallback((cb) => s.close(cb)), first);
  },
);

storeTest(
  "close never ends a postgres.js sql the user passed in",
  async ({ store, sql }) => {
    const s = store();
    await s.get("a");
    await s.close();
    const [{ one }] = await sql`SELECT 1 AS one`;
    assert.equal(one, 1);
  },
);

storeTest(
  "a bad session id or session is an error through the callback",
  async ({ store, row }) => {
    const s = store();
    await s.set("keep", sessionData({ safe: true }));
    const circular: Record<string, unknown> = { cookie: {} };
    circular.self = circular;
    const bad: [string, (cb: (e: Error | null) => void) => unknown, RegExp][] =
      [
        [
          "number id",
          (cb) => s.get(42 as never, cb),
          /session id must be a string/,
        ],
        ["NUL in id", (cb) => s.set("a\0b", sessionData(), cb), /NUL/],
        [
          "null session",
          (cb) => s.set("a", null as never, cb),
          /session must be an object/,
        ],
        [
          "circular session",
          (cb) => s.set("a", circular as never, cb),
          /cannot be stored as JSON/,
        ],
        [
          "BigInt",
          (cb) => s.set("a", sessionData({ n: 1n }), cb),
          /cannot be stored as JSON/,
        ],
        [
          "bad cookie.expires",
          (cb) =>
            s.set("a", { cookie: { expires: "not a date" } } as never, cb),
          /cookie.expires is not a valid date/,
        ],
      ];
    for (const [label, call, message] of bad) {
      const { error, calls } = await viaCallback(call);
      assert.match(String(error?.message), message, label);
      assert.equal(calls, 1, label);
    }
    assert.equal(await row("a"), undefined);
    assert.match((await row("keep"))!.sess, /"safe":true/);
  },
);

storeTest("a null callback is taken as no callback", async ({ store }) => {
  const s = store();
  await s.set("a", sessionData({ n: 1 }), null as never);
  assert.equal(
    (await s.get("a", null as never) as unknown as { n: number }).n,
    1,
  );
  await s.destroy("a", null as never);
  assert.equal(await s.get("a"), null);
});
