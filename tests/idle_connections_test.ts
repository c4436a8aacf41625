/**
 * Connections that die while idle: cut silently by a proxy (as cloud load
 * balancers and NAT gateways do), or closed by the server's
 * `idle_session_timeout`. The next call on such a connection fails before
 * anything reaches the database; the store tries it again on a new
 * connection, so the app sees no error.
 *
 * @module
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import {
  BEHIND_PGBOUNCER,
  DATABASE_URL,
  sessionData,
  storeTest,
} from "./_helpers.ts";
import { startIdleCutProxy } from "./_proxy.ts";

/** `DATABASE_URL` with its host and port replaced. */
function through(host: string, port: number): string {
  const url = new URL(DATABASE_URL);
  url.hostname = host;
  url.port = String(port);
  return url.href;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

storeTest(
  "calls on connections a proxy cut silently while idle succeed",
  async ({ store, row }) => {
    const target = new URL(DATABASE_URL);
    const proxy = await startIdleCutProxy(
      { host: target.hostname, port: Number(target.port || 5432) },
      300,
    );
    const sql = postgres(through("127.0.0.1", proxy.port), {
      max: 1,
      onnotice: () => {},
    });
    try {
      const s = store({ postgres: sql });
      await s.set("sid", sessionData({ n: 0 }));
      for (let n = 1; n <= 3; n++) {
        await until(() => proxy.cuts === n, `idle cut ${n}`);
        const read = await s.get("sid") as unknown as { n: number };
        assert.equal(read.n, n - 1, `get after cut ${n}`);
        await s.set("sid", sessionData({ n }));
      }
      assert.equal(JSON.parse((await row("sid"))!.sess).n, 3);
      assert.ok(proxy.lostBytes > 0, "calls were written into cut connections");
    } finally {
      await sql.end({ timeout: 1 });
      await proxy.close();
    }
  },
);

storeTest(
  "calls at the edge of the server's idle_session_timeout succeed",
  async ({ store, sql: admin }) => {
    const [{ server_version_num: version }] =
      await admin`SHOW server_version_num`;
    if (Number(version) < 140000) return; // idle_session_timeout is PostgreSQL 14+
    const sql = postgres(DATABASE_URL, {
      max: 1,
      onnotice: () => {},
      connection: { idle_session_timeout: 200 },
    });
    try {
      const s = store({ postgres: sql });
      await s.set("sid", sessionData());
      const failed: string[] = [];
      // Pauses around the timeout, so that some calls meet a connection the
      // server is closing at that very moment.
      for (let pause = 170; pause <= 240; pause += 5) {
        await new Promise((resolve) => setTimeout(resolve, pause));
        await s.get("sid").catch((error) => failed.push(`${pause}: ${error}`));
      }
      assert.deepEqual(failed, []);
    } finally {
      await sql.end({ timeout: 1 });
    }
  },
  { skip: BEHIND_PGBOUNCER && "PgBouncer refuses startup settings" },
);
