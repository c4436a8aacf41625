/**
 * Two Express apps on one session table, one on connect-pg-simple and one on
 * this store, with the same secret and cookie name: what a rollout that runs
 * both at once looks like to a browser.
 */
import assert from "node:assert/strict";
import express from "express";
import session from "express-session";
import type { Store } from "express-session";
import connectPgSimple from "connect-pg-simple";
import pg from "pg";
import { DATABASE_URL, storeTest } from "./_helpers.ts";
import { startCounterApp, type Visit, visit as request } from "./_http.ts";

/** A visit that must succeed. */
async function visit(
  url: string,
  path: string,
  cookie?: string,
): Promise<Visit> {
  const answer = await request(url, path, cookie);
  assert.equal(answer.status, 200, `${path}: ${answer.status}`);
  return answer;
}

/** The two apps share a cookie name and secret, as in a rollout. */
const sameCookie = { name: "sid", secret: "one secret for both apps" };

const PgStoreClass = (connectPgSimple as (s: unknown) => new (
  options: Record<string, unknown>,
) => Store & { close(): Promise<void> })(session);

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
    const apps = await Promise.all([
      startCounterApp(express, theirs, sameCookie),
      startCounterApp(express, store(), sameCookie),
    ]);
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
      assert.ok(
        one.setCookie?.startsWith("sid="),
        "a session cookie is issued",
      );
      const two = await visit(apps[second], "/count", one.setCookie);
      assert.deepEqual([two.count, two.id], [2, one.id]);
      const three = await visit(apps[first], "/count", one.setCookie);
      assert.deepEqual([three.count, three.id], [3, one.id]);
      const peek = await visit(apps[second], "/peek", one.setCookie);
      assert.deepEqual([peek.count, peek.id], [3, one.id]);
      const four = await visit(apps[first], "/count", one.setCookie);
      assert.deepEqual([four.count, four.id], [4, one.id]);
    },
  );

  bothApps(
    `logout on the ${second} app logs out of the ${first} app`,
    async (apps) => {
      const one = await visit(apps[first], "/count");
      await visit(apps[second], "/count", one.setCookie);
      await visit(apps[second], "/logout", one.setCookie);
      const after = await visit(apps[first], "/count", one.setCookie);
      assert.equal(after.count, 1, "the counter starts again");
      assert.notEqual(after.id, one.id, "in a new session");
      assert.ok(after.setCookie && after.setCookie !== one.setCookie);
    },
  );
}
