import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import process from "node:process";
import postgres from "postgres";
import {
  PostgresStoreClass,
  sessionData,
  storeTest,
  viaCallback,
} from "./_helpers.ts";

/** A loopback server that accepts connections and never says a word. */
async function silentServer() {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

test("a call to a database that never answers fails after callTimeout", async () => {
  const server = await silentServer();
  const sql = postgres({
    host: "127.0.0.1",
    port: server.port,
    connect_timeout: 30,
  });
  const store = new PostgresStoreClass({
    postgres: sql,
    callTimeout: 0.2,
    pruneSessionInterval: false,
  });
  const unhandled: unknown[] = [];
  const listener = (reason: unknown) => unhandled.push(reason);
  process.on("unhandledRejection", listener);
  try {
    const viaCb = await viaCallback((cb) => store.get("sid", cb));
    assert.equal((viaCb.error as { code?: string })?.code, "CALL_TIMEOUT");
    assert.match(
      String(viaCb.error?.message),
      /get got no answer .* 0\.2 s \(callTimeout\)/,
    );
    await assert.rejects(store.set("sid", sessionData()), {
      code: "CALL_TIMEOUT",
    });
    await assert.rejects(store.length(), { code: "CALL_TIMEOUT" });
  } finally {
    await store.close();
    await sql.end({ timeout: 0 });
    await server.close();
    await new Promise((resolve) => setImmediate(resolve));
    process.off("unhandledRejection", listener);
  }
  assert.deepEqual(unhandled, [], "the abandoned queries fail quietly");
});

storeTest(
  "a write blocked by a lock fails after callTimeout, and the store goes on",
  async ({ store, sql, table }) => {
    const s = store({ callTimeout: 0.3 });
    await s.set("busy", sessionData({ n: 1 }));
    const locker = await sql.reserve();
    try {
      await locker`BEGIN`;
      await locker.unsafe(
        `SELECT * FROM ${table} WHERE sid = 'busy' FOR UPDATE`,
      );
      await assert.rejects(s.touch("busy", sessionData({}, 7200)), {
        code: "CALL_TIMEOUT",
      });
      await s.set("other", sessionData({ n: 2 }));
      assert.equal((await s.get("other") as unknown as { n: number }).n, 2);
    } finally {
      await locker`ROLLBACK`;
      locker.release();
    }
  },
);

storeTest(
  "callTimeout: false sets no limit: a call held longer than the default 10 s still completes",
  async ({ store, sql, table, row }) => {
    const unlimited = store({ callTimeout: false });
    const limited = store(); // the default, 10 s
    await unlimited.set("held", sessionData({ n: 1 }));
    const locker = await sql.reserve();
    let unlimitedSet: Promise<unknown> = Promise.resolve();
    try {
      await locker`BEGIN`;
      await locker.unsafe(
        `SELECT * FROM ${table} WHERE sid = 'held' FOR UPDATE`,
      );
      const started = performance.now();
      unlimitedSet = unlimited.set("held", sessionData({ n: 2 }));
      // The default limit ends a call held as long, which shows the hold
      // outlasted it.
      await assert.rejects(limited.set("held", sessionData({ n: 3 })), {
        code: "CALL_TIMEOUT",
      });
      assert.ok(performance.now() - started >= 9_900);
    } finally {
      await locker`ROLLBACK`;
      locker.release();
    }
    await unlimitedSet;
    assert.equal(JSON.parse((await row("held"))!.sess).n, 2);
  },
);
