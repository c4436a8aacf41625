/**
 * End to end over HTTP: Express 4 and Express 5 with express-session and the
 * store, as a browser would use them (the cookie carried by hand).
 *
 * Runs under Deno (`deno task test`) and, compiled, under Node against the
 * installed npm package (`deno task test:npm`).
 */
import assert from "node:assert/strict";
import express5 from "express";
import express4 from "express4";
import { storeTest, type TestBed } from "./_helpers.ts";
import {
  type ExpressFactory,
  startCounterApp,
  type Visit,
  visit as request,
} from "./_http.ts";

const VARIANTS: [string, ExpressFactory][] = [
  ["Express 4", express4 as unknown as ExpressFactory],
  ["Express 5", express5],
];

function e2eTest(
  name: string,
  express: ExpressFactory,
  fn: (
    app: {
      visit: (cookie?: string) => Promise<Visit>;
      logout: (cookie: string) => Promise<Visit>;
    },
    bed: TestBed,
  ) => Promise<void>,
): void {
  storeTest(name, async (bed) => {
    const app = await startCounterApp(express, bed.store(), {
      secret: "e2e secret",
    });
    try {
      await fn({
        visit: (cookie) => request(app.url, "/count", cookie),
        logout: (cookie) => request(app.url, "/logout", cookie),
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
