/**
 * End to end over HTTP: Fastify 5 with @fastify/session and the store, as a
 * browser would use them (the cookie carried by hand).
 *
 * @fastify/session calls only `get`, `set` and `destroy`, each with a
 * callback, and hands `set` its own `Session` object (methods, symbol keys,
 * a `Cookie` whose `expires` is a getter). It never calls `touch`: with
 * `rolling` (its default) every request saves the session, which moves the
 * expiry.
 *
 * Runs under Deno (`deno task test`) and, compiled, under Node and Bun
 * against the installed npm package (`deno task test:npm`, `test:bun`).
 */
import assert from "node:assert/strict";
import { storeTest, type TestBed } from "./_helpers.ts";
import express from "express";
import { startCounterApp, type Visit, visit as request } from "./_http.ts";
import { FastifyPostgresStore, startFastifyApp } from "./_fastify.ts";

interface App {
  /** `GET path` with the cookie, answered 200. */
  get: (path: string, cookie?: string) => Promise<Visit>;
  logout: (cookie: string) => Promise<Visit>;
}

function fastifyTest(
  name: string,
  fn: (app: App, bed: TestBed) => Promise<void>,
  { rolling = true }: { rolling?: boolean } = {},
): void {
  storeTest(`Fastify: ${name}`, async (bed) => {
    const store = new FastifyPostgresStore({
      postgres: bed.sql,
      schemaName: bed.schema,
      pruneSessionInterval: false,
    });
    const app = await startFastifyApp(store, { rolling });
    try {
      await fn({
        async get(path, cookie) {
          const answer = await request(app.url, path, cookie);
          assert.equal(answer.status, 200, `${path}: ${answer.status}`);
          return answer;
        },
        logout: (cookie) => request(app.url, "/logout", cookie),
      }, bed);
    } finally {
      await app.close();
      await store.close();
    }
  });
}

/** The expiry a 60 s cookie made between `before` and `after` (ms) gets, in seconds. */
function expiryBetween(before: number, after: number): [number, number] {
  return [Math.ceil(before / 1000) + 60, Math.ceil(after / 1000) + 60];
}

fastifyTest(
  "the first response sets a cookie, and requests with it share the session",
  async ({ get }, { row }) => {
    const before = Date.now();
    const first = await get("/count");
    const after = Date.now();
    assert.equal(first.count, 1);
    assert.ok(first.setCookie?.startsWith("sessionId="), "a Set-Cookie");
    const stored = await row(first.id);
    assert.ok(stored, "a row under the session id");
    const sess = JSON.parse(stored.sess);
    assert.equal(sess.count, 1);
    assert.equal(sess.cookie.originalMaxAge, 60_000);
    const [low, high] = expiryBetween(before, after);
    assert.ok(
      stored.expire >= low && stored.expire <= high,
      `expire ${stored.expire} is the cookie's, in [${low}, ${high}]`,
    );
    assert.equal(
      stored.expire,
      Math.ceil(Date.parse(sess.cookie.expires) / 1000),
      "expire is the stored cookie's expiry",
    );

    const second = await get("/count", first.setCookie);
    const third = await get("/count", first.setCookie);
    assert.deepEqual(
      [second.count, second.id, third.count, third.id],
      [2, first.id, 3, first.id],
    );
    assert.equal(JSON.parse((await row(first.id))?.sess ?? "{}").count, 3);

    const stranger = await get("/count");
    assert.equal(stranger.count, 1, "no cookie, a session of its own");
    assert.notEqual(stranger.id, first.id);
  },
);

fastifyTest(
  "a request that only reads the session moves its expiry (rolling, the default)",
  async ({ get }, { row, sql, table }) => {
    const first = await get("/count");
    await sql.unsafe(
      `UPDATE ${table} SET expire = expire - interval '30 seconds' WHERE sid = $1`,
      [first.id],
    );
    const aged = await row(first.id);

    const before = Date.now();
    const peek = await get("/peek", first.setCookie);
    const after = Date.now();
    assert.deepEqual([peek.count, peek.id], [1, first.id]);
    const touched = await row(first.id);
    const [low, high] = expiryBetween(before, after);
    assert.ok(
      touched && touched.expire >= low && touched.expire <= high,
      `expire moved from ${aged?.expire} to ${touched?.expire}, in [${low}, ${high}]`,
    );
    assert.equal(JSON.parse(touched.sess).count, 1);
  },
);

fastifyTest(
  "rolling: false: a read leaves the expiry alone, a change moves it",
  async ({ get }, { row, sql, table }) => {
    const first = await get("/count");
    await sql.unsafe(
      `UPDATE ${table} SET expire = expire - interval '30 seconds' WHERE sid = $1`,
      [first.id],
    );
    const aged = await row(first.id);

    assert.equal((await get("/peek", first.setCookie)).count, 1);
    assert.deepEqual(await row(first.id), aged, "the read wrote nothing");

    const before = Date.now();
    assert.equal((await get("/count", first.setCookie)).count, 2);
    const after = Date.now();
    const changed = await row(first.id);
    const [low, high] = expiryBetween(before, after);
    assert.ok(
      changed && changed.expire >= low && changed.expire <= high,
      `expire ${changed?.expire} in [${low}, ${high}]`,
    );
  },
  { rolling: false },
);

fastifyTest(
  "regenerate moves the session to a new id and deletes the old row",
  async ({ get }, { row }) => {
    const first = await get("/count");
    assert.equal((await get("/count", first.setCookie)).count, 2);

    const moved = await get("/regenerate", first.setCookie);
    assert.equal(moved.count, 2);
    assert.notEqual(moved.id, first.id);
    assert.ok(moved.setCookie && moved.setCookie !== first.setCookie);
    assert.equal(await row(first.id), undefined, "the old row is deleted");
    assert.equal(JSON.parse((await row(moved.id))?.sess ?? "{}").count, 2);

    assert.deepEqual(
      [(await get("/count", moved.setCookie)).count, moved.id],
      [3, (await get("/peek", moved.setCookie)).id],
    );
  },
);

fastifyTest(
  "logout destroys the session, and its cookie then gets a new one",
  async ({ get, logout }, { row }) => {
    const first = await get("/count");
    assert.equal((await get("/count", first.setCookie)).count, 2);
    assert.equal((await logout(first.setCookie!)).status, 200);
    assert.equal(await row(first.id), undefined, "the row is deleted");

    const after = await get("/count", first.setCookie);
    assert.equal(after.count, 1);
    assert.notEqual(after.id, first.id);
    assert.ok(after.setCookie, "a fresh Set-Cookie");
    assert.notEqual(after.setCookie, first.setCookie);
  },
);

fastifyTest(
  "an expired session is not revived",
  async ({ get }, { row, sql, table }) => {
    const first = await get("/count");
    assert.equal((await get("/count", first.setCookie)).count, 2);
    // The row expired, though the cookie inside it says otherwise: the table decides.
    await sql.unsafe(
      `UPDATE ${table} SET expire = expire - interval '2 days' WHERE sid = $1`,
      [first.id],
    );
    const expired = await row(first.id);

    const after = await get("/count", first.setCookie);
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

storeTest(
  "Fastify and Express on one table share sessions, either way round",
  async (bed) => {
    // express-session's cookie is "s:" + the id signed as @fastify/cookie signs it.
    const cookie = {
      name: "sid",
      secret: "one secret for both apps, 32+ chars",
    };
    const store = new FastifyPostgresStore({
      postgres: bed.sql,
      schemaName: bed.schema,
      pruneSessionInterval: false,
    });
    const apps = await Promise.all([
      startCounterApp(express, bed.store(), cookie),
      startFastifyApp(store, {
        cookieName: cookie.name,
        cookiePrefix: "s:",
        secret: cookie.secret,
      }),
    ]);
    const [onExpress, onFastify] = apps.map((app) => async (sid?: string) => {
      const answer = await request(app.url, "/count", sid);
      assert.equal(answer.status, 200);
      return answer;
    });
    try {
      const first = await onExpress();
      const second = await onFastify(first.setCookie);
      const third = await onExpress(second.setCookie ?? first.setCookie);
      assert.deepEqual(
        [second.count, second.id, third.count, third.id],
        [2, first.id, 3, first.id],
        "Express, then Fastify, then Express",
      );

      const other = await onFastify();
      const back = await onExpress(other.setCookie);
      assert.deepEqual([back.count, back.id], [2, other.id], "Fastify first");
      assert.equal(
        JSON.parse((await bed.row(other.id))?.sess ?? "{}").count,
        2,
      );
    } finally {
      await Promise.all(apps.map((app) => app.close()));
      await store.close();
    }
  },
);
