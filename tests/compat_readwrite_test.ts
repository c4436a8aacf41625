/**
 * connect-pg-simple 10 and this store side by side (reading and writing: what
 * one store writes the other reads, session for session, and the calls that
 * differ). Helpers: `_compat.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  BEHIND_PGBOUNCER,
  nowSeconds,
  sessionData,
  viaCallback,
} from "./_helpers.ts";
import { CASES, compatTest, pgCall, pgGet, rawRow, stored } from "./_compat.ts";

compatTest(
  "each store reads what the other wrote",
  async ({ store, pgStore }) => {
    const ours = store();
    const theirs = pgStore();
    for (const [name, data] of Object.entries(CASES)) {
      await pgCall((cb) => theirs.set(`pg-${name}`, data, cb));
      assert.deepEqual(await ours.get(`pg-${name}`), stored(data), name);
      await ours.set(`ours-${name}`, data as never);
      assert.deepEqual(await pgGet(theirs, `ours-${name}`), stored(data), name);
    }
    const sid = `sid "quoted" 'é' 🎉 ${"z".repeat(300)}`;
    await pgCall((cb) => theirs.set(sid, CASES.nested, cb));
    assert.deepEqual(await ours.get(sid), stored(CASES.nested));
    await ours.destroy(sid);
    await ours.set(sid, CASES.unicode);
    assert.deepEqual(await pgGet(theirs, sid), stored(CASES.unicode));
  },
);

compatTest(
  "for the same session both write the same sess and expire",
  async ({ store, pgStore, sql, table }) => {
    const ours = store({ ttl: 90.5 });
    const theirs = pgStore({ ttl: 90.5 });
    const inputs: Record<string, unknown> = {
      ...CASES,
      "cookie.expires as a Date with milliseconds": {
        cookie: { expires: new Date(Date.UTC(2031, 5, 7, 8, 9, 10, 1)) },
      },
      "cookie.expires on a whole second": {
        cookie: { expires: new Date(Date.UTC(2031, 5, 7, 8, 9, 10, 0)) },
      },
    };
    for (const [name, data] of Object.entries(inputs)) {
      // A write without cookie.expires counts from now: redo the pair when
      // the two writes straddle a second.
      for (let attempt = 0;; attempt++) {
        const before = Math.ceil(Date.now() / 1000);
        await pgCall((cb) => theirs.set("pg", data, cb));
        await ours.set("ours", data as never);
        if (Math.ceil(Date.now() / 1000) !== before && attempt < 5) continue;
        const [a, b] = [
          await rawRow(sql, table, "pg"),
          await rawRow(sql, table, "ours"),
        ];
        assert.equal(b?.expire, a?.expire, `${name}: expire`);
        assert.equal(b?.sess, a?.sess, `${name}: sess`);
        break;
      }
    }
  },
);

compatTest(
  "with the same TimeZone on both connections, a non-UTC zone changes nothing",
  async ({ schema, table, newPool, newSql, store, pgStore, sql }) => {
    const zone = "Pacific/Chatham"; // +12:45 / +13:45: no whole-hour luck
    const ours = store({
      postgres: newSql({ connection: { TimeZone: zone } }),
    });
    const theirs = pgStore({
      pool: newPool({ options: `-c TimeZone=${zone}` }),
      schemaName: schema,
    });
    const cookie = { expires: new Date(Date.now() + 30_000).toISOString() };
    const [one, two] = [{ cookie, n: 1 }, { cookie, n: 2 }];
    await pgCall((cb) => theirs.set("pg", one, cb));
    await ours.set("ours", two as never);
    assert.deepEqual(await ours.get("pg"), stored(one));
    assert.deepEqual(await pgGet(theirs, "ours"), stored(two));
    assert.equal(
      (await rawRow(sql, table, "pg"))?.expire,
      (await rawRow(sql, table, "ours"))?.expire,
      "both wrote the same zone's wall clock",
    );
    // A third store on a UTC connection writes another wall-clock value for
    // the same instant: why both sides of a rollout need the same TimeZone.
    const utc = store({
      postgres: newSql({ connection: { TimeZone: "UTC" } }),
    });
    const expires = new Date(Date.UTC(2031, 0, 1));
    await utc.set("utc", { cookie: { expires } } as never);
    await ours.set("zoned", { cookie: { expires } } as never);
    assert.notEqual(
      (await rawRow(sql, table, "utc"))?.expire,
      (await rawRow(sql, table, "zoned"))?.expire,
    );
  },
  {
    skip: BEHIND_PGBOUNCER &&
      "PgBouncer refuses per-connection startup settings",
  },
);

compatTest(
  "a session stored as a JSON string reads the same in both",
  async ({ store, pgStore, insert }) => {
    await insert(
      "s",
      JSON.stringify(JSON.stringify({ a: 1 })),
      nowSeconds() + 60,
    );
    assert.deepEqual(await pgGet(pgStore(), "s"), { a: 1 });
    assert.deepEqual(await store().get("s"), { a: 1 });
  },
);

compatTest(
  "an unreadable stored string is destroyed by either and reads as none",
  async ({ store, pgStore, insert, row }) => {
    await insert("a", JSON.stringify("{nope"), nowSeconds() + 60);
    await insert("b", JSON.stringify("{nope"), nowSeconds() + 60);
    assert.equal(await pgGet(pgStore(), "a"), null);
    assert.equal(await store().get("b"), null);
    assert.equal(await row("a"), undefined);
    assert.equal(await row("b"), undefined);
  },
);

compatTest(
  "difference: get of a missing session calls back with null in ours, with nothing in connect-pg-simple",
  async ({ store, pgStore }) => {
    const theirs = await viaCallback((cb) => pgStore().get("none", cb));
    const ours = await viaCallback((cb) => store().get("none", cb));
    assert.deepEqual(theirs, { error: null, result: undefined, calls: 1 });
    assert.deepEqual(ours, { error: null, result: null, calls: 1 });
  },
);

compatTest(
  "difference: after close() ours refuses calls, connect-pg-simple's (on a pool it was given) still runs them",
  async ({ store, pgStore }) => {
    const theirs = pgStore();
    const ours = store();
    await theirs.close();
    await ours.close();
    await pgCall((cb) => theirs.set("x", sessionData(), cb));
    await assert.rejects(ours.get("x"), /the store is closed/);
  },
);
