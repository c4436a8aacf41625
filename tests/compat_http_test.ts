/**
 * Two Express apps on one session table, one on connect-pg-simple and one on
 * this store, with the same secret and cookie name: what a rollout that runs
 * both at once looks like to a browser.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import session from "express-session";
import type { Store } from "express-session";
import connectPgSimple from "connect-pg-simple";
import pg from "pg";
import { DATABASE_URL, storeTest } from "./_helpers.ts";

const PgStoreClass = (connectPgSimple as (s: unknown) => new (
  options: Record<string, unknown>,
) => Store & { close(): Promise<void> })(session);

/** What an app answers: the visit count kept in the session, and its id. */
interface Visit {
  count: number;
  id: string;
  /** The `name=value` part of the response's `Set-Cookie`, if any. */
  cookie: string | undefined;
}

/** An app counting visits in the session, on a free loopback port. */
async function startApp(
  store: Store,
): Promise<{ url: string; close: () => Promise<void> }> {
  const app = express();
  app.use(session({
    store,
    name: "sid",
    secret: "one secret for both apps",
    resave: false,
    saveUninitialized: false,
    cookie: { maxAge: 60_000 },
  }));
  app.get("/count", (req, res) => {
    const data = req.session as unknown as { count?: number };
    data.count = (data.count ?? 0) + 1;
    res.json({ count: data.count, id: req.sessionID });
  });
  // Reads without changing the session: express-session touches it instead.
  app.get("/peek", (req, res) => {
    const data = req.session as unknown as { count?: number };
    res.json({ count: data.count ?? 0, id: req.sessionID });
  });
  app.post("/logout", (req, res, next) => {
    req.session.destroy((error) => error ? next(error) : res.json({}));
  });
  const server = createServer(app);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      const closed = once(server, "close");
      server.close();
      server.closeAllConnections();
      await closed;
    },
  };
}

async function visit(
  url: string,
  path: string,
  cookie?: string,
): Promise<Visit> {
  const res = await fetch(url + path, {
    method: path === "/logout" ? "POST" : "GET",
    headers: cookie ? { cookie } : {},
  });
  assert.equal(res.status, 200, `${path}: ${res.status}`);
  const body = await res.json();
  return {
    count: body.count,
    id: body.id,
    cookie: res.headers.get("set-cookie")?.split(";")[0],
  };
}

/** Both apps on the test's table; `fn` gets their URLs by store. */
function bothApps(
  name: string,
  fn: (apps: { pg: string; ours: string }) => Promise<void>,
): void {
  storeTest(name, async ({ store, schema }) => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
    const theirs = new PgStoreClass({
      pool,
      schemaName: schema,
      pruneSessionInterval: false,
    });
    const apps = await Promise.all([startApp(theirs), startApp(store())]);
    try {
      await fn({ pg: apps[0].url, ours: apps[1].url });
    } finally {
      await Promise.all(apps.map((app) => app.close()));
      await theirs.close();
      await pool.end();
    }
  });
}

for (const [first, second] of [["pg", "ours"], ["ours", "pg"]] as const) {
  bothApps(
    `a session begun on the ${first} app carries on in the ${second} app and back`,
    async (apps) => {
      const one = await visit(apps[first], "/count");
      assert.equal(one.count, 1);
      assert.ok(one.cookie?.startsWith("sid="), "a session cookie is issued");
      const two = await visit(apps[second], "/count", one.cookie);
      assert.deepEqual([two.count, two.id], [2, one.id]);
      const three = await visit(apps[first], "/count", one.cookie);
      assert.deepEqual([three.count, three.id], [3, one.id]);
      const peek = await visit(apps[second], "/peek", one.cookie);
      assert.deepEqual([peek.count, peek.id], [3, one.id]);
      const four = await visit(apps[first], "/count", one.cookie);
      assert.deepEqual([four.count, four.id], [4, one.id]);
    },
  );

  bothApps(
    `logout on the ${second} app logs out of the ${first} app`,
    async (apps) => {
      const one = await visit(apps[first], "/count");
      await visit(apps[second], "/count", one.cookie);
      await visit(apps[second], "/logout", one.cookie);
      const after = await visit(apps[first], "/count", one.cookie);
      assert.equal(after.count, 1, "the counter starts again");
      assert.notEqual(after.id, one.id, "in a new session");
      assert.ok(after.cookie && after.cookie !== one.cookie);
    },
  );
}
