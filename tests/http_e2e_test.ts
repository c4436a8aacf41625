/**
 * End to end over HTTP: Express 4 and Express 5 with express-session and the
 * store, as a browser would use them (the cookie carried by hand).
 *
 * Runs under Deno (`deno task test`) and, compiled, under Node against the
 * installed npm package (`deno task test:npm`).
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import express5 from "express";
import express4 from "express4";
import session from "express-session";
import { storeTest, type TestBed } from "./_helpers.ts";

type Express = typeof express5;
type PostgresStore = ReturnType<TestBed["store"]>;

const VARIANTS: [string, Express][] = [
  ["Express 4", express4 as unknown as Express],
  ["Express 5", express5],
];

/** What the app answers: the visit count kept in the session, and its id. */
interface Visit {
  status: number;
  count: number;
  id: string;
  /** The `name=value` part of the response's `Set-Cookie`, if any. */
  setCookie: string | undefined;
}

/** An app counting visits in the session, listening on a free loopback port. */
async function startApp(
  express: Express,
  store: PostgresStore,
): Promise<{ url: string; close: () => Promise<void> }> {
  const app = express();
  app.use(session({
    store,
    secret: "e2e secret",
    resave: false,
    saveUninitialized: false,
    cookie: { maxAge: 60_000 },
  }));
  app.get("/count", (req, res) => {
    const data = req.session as unknown as { count?: number };
    data.count = (data.count ?? 0) + 1;
    res.json({ count: data.count, id: req.sessionID });
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
      await closed;
    },
  };
}

/** One request without keep-alive; `cookie` is sent as the `Cookie` header. */
function call(
  url: string,
  method: "GET" | "POST",
  cookie?: string,
): Promise<Visit> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {
      method,
      agent: false,
      headers: cookie ? { cookie } : {},
    }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => body += chunk);
      res.on("error", reject);
      res.on("end", () => {
        const parsed = JSON.parse(body) as { count?: number; id?: string };
        resolve({
          status: res.statusCode ?? 0,
          count: parsed.count ?? 0,
          id: parsed.id ?? "",
          setCookie: res.headers["set-cookie"]?.[0]?.split(";")[0],
        });
      });
    });
    req.on("error", reject);
    req.end();
  });
}

function e2eTest(
  name: string,
  express: Express,
  fn: (
    app: {
      visit: (cookie?: string) => Promise<Visit>;
      logout: (cookie: string) => Promise<Visit>;
    },
    bed: TestBed,
  ) => Promise<void>,
): void {
  storeTest(name, async (bed) => {
    const app = await startApp(express, bed.store());
    try {
      await fn({
        visit: (cookie) => call(`${app.url}/count`, "GET", cookie),
        logout: (cookie) => call(`${app.url}/logout`, "POST", cookie),
      }, bed);
    } finally {
      await app.close();
    }
  });
}

for (const [name, express] of VARIANTS) {
  e2eTest(
    `${name}: the first response sets a cookie, and requests with it share the session`,
    express,
    async ({ visit }, { row }) => {
      const first = await visit();
      assert.equal(first.status, 200);
      assert.equal(first.count, 1);
      assert.ok(first.setCookie?.startsWith("connect.sid="), "a Set-Cookie");
      assert.equal(JSON.parse((await row(first.id))?.sess ?? "{}").count, 1);

      const second = await visit(first.setCookie);
      const third = await visit(first.setCookie);
      assert.deepEqual(
        [second.count, second.id, third.count, third.id],
        [2, first.id, 3, first.id],
      );
      assert.equal(JSON.parse((await row(first.id))?.sess ?? "{}").count, 3);

      const stranger = await visit();
      assert.equal(stranger.count, 1, "no cookie, a session of its own");
      assert.notEqual(stranger.id, first.id);
    },
  );

  e2eTest(
    `${name}: logout destroys the session, and its cookie then gets a new one`,
    express,
    async ({ visit, logout }, { row }) => {
      const first = await visit();
      assert.equal((await visit(first.setCookie)).count, 2);
      assert.equal((await logout(first.setCookie!)).status, 200);
      assert.equal(await row(first.id), undefined, "the row is deleted");

      const after = await visit(first.setCookie);
      assert.equal(after.count, 1);
      assert.notEqual(after.id, first.id);
      assert.ok(after.setCookie, "a fresh Set-Cookie");
      assert.notEqual(after.setCookie, first.setCookie);
    },
  );

  e2eTest(
    `${name}: an expired session is not revived`,
    express,
    async ({ visit }, { row, sql, table }) => {
      const first = await visit();
      assert.equal((await visit(first.setCookie)).count, 2);
      await sql.unsafe(
        `UPDATE ${table} SET expire = expire - interval '2 days' WHERE sid = $1`,
        [first.id],
      );
      const expired = await row(first.id);

      const after = await visit(first.setCookie);
      assert.equal(after.count, 1, "the old count is gone");
      assert.notEqual(after.id, first.id);
      assert.ok(after.setCookie, "a fresh Set-Cookie");
      assert.deepEqual(
        await row(first.id),
        expired,
        "the expired row is neither touched nor rewritten",
      );
    },
  );
}
