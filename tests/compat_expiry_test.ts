/**
 * connect-pg-simple 10 and this store side by side (expiry: both agree on when
 * a session ends, and on touch, destroy and the listing calls). Helpers:
 * `_compat.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { sessionData } from "./_helpers.ts";
import { compatTest, pgCall, pgGet, rawRow } from "./_compat.ts";

compatTest(
  "a touch by one extends the session for the other",
  async ({ store, pgStore, sql, table }) => {
    const ours = store();
    const theirs = pgStore();
    await pgCall((cb) => theirs.set("pg", sessionData({ v: 1 }, 60), cb));
    await ours.set("ours", sessionData({ v: 2 }, 60));
    const later = sessionData({ v: "ignored by touch" }, 7200);
    await ours.touch("pg", later);
    await pgCall((cb) => theirs.touch("ours", later, cb));
    for (const sid of ["pg", "ours"]) {
      const row = await rawRow(sql, table, sid);
      const [{ expected }] = await sql.unsafe(
        "SELECT to_timestamp($1::float8)::timestamp::text AS expected",
        [Math.ceil(new Date(later.cookie.expires!).valueOf() / 1000)],
      );
      assert.equal(row?.expire, expected, `${sid} moved to the new expiry`);
      assert.ok(!row?.sess.includes("ignored"), "touch never rewrites sess");
    }
    assert.equal((await pgGet(theirs, "ours") as { v: number }).v, 2);
    assert.equal((await ours.get("pg") as unknown as { v: number }).v, 1);
  },
);

compatTest(
  "an expired session is invisible to both, whoever wrote it",
  async ({ store, pgStore, row }) => {
    const ours = store();
    const theirs = pgStore();
    await pgCall((cb) => theirs.set("pg", sessionData({}, -5), cb));
    await ours.set("ours", sessionData({}, -5));
    await ours.set("live", sessionData({}, 60));
    for (const sid of ["pg", "ours"]) {
      assert.ok(await row(sid), `${sid} is still in the table`);
      assert.equal(await pgGet(theirs, sid), null);
      assert.equal(await ours.get(sid), null);
    }
    assert.deepEqual(await ours.ids(), ["live"]);
    assert.equal(await ours.length(), 1);
    assert.deepEqual((await ours.all()).map((s) => s.id), ["live"]);
  },
);

compatTest(
  "difference: touch of an expired session revives it in connect-pg-simple, not in ours",
  async ({ store, pgStore }) => {
    const ours = store();
    const theirs = pgStore();
    await ours.set("a", sessionData({ n: 1 }, -5));
    await ours.set("b", sessionData({ n: 2 }, -5));
    await pgCall((cb) => theirs.touch("a", sessionData({}, 60), cb));
    await ours.touch("b", sessionData({}, 60));
    assert.equal((await ours.get("a") as unknown as { n: number }).n, 1);
    assert.equal(await pgGet(theirs, "b"), null);
  },
);

compatTest(
  "destroy by one is seen by the other",
  async ({ store, pgStore, row }) => {
    const ours = store();
    const theirs = pgStore();
    await pgCall((cb) => theirs.set("pg", sessionData(), cb));
    await ours.set("ours", sessionData());
    await ours.destroy("pg");
    await pgCall((cb) => theirs.destroy("ours", cb));
    for (const sid of ["pg", "ours"]) {
      assert.equal(await row(sid), undefined);
      assert.equal(await pgGet(theirs, sid), null);
      assert.equal(await ours.get(sid), null);
    }
  },
);

compatTest(
  "our all, ids and length agree with what connect-pg-simple can get",
  async ({ store, pgStore }) => {
    const ours = store();
    const theirs = pgStore();
    const written: string[] = [];
    for (let i = 0; i < 12; i++) {
      const sid = `s${i}`;
      written.push(sid);
      const data = sessionData({ i, text: `é${i}` }, i % 3 === 0 ? -30 : 600);
      if (i % 2) await pgCall((cb) => theirs.set(sid, data, cb));
      else await ours.set(sid, data);
    }
    const visible = new Map<string, unknown>();
    for (const sid of written) {
      const got = await pgGet(theirs, sid);
      if (got !== null) visible.set(sid, got);
    }
    assert.equal(visible.size, 8);
    assert.deepEqual((await ours.ids()).sort(), [...visible.keys()].sort());
    assert.equal(await ours.length(), visible.size);
    const all = await ours.all();
    assert.equal(all.length, visible.size);
    for (const { id, ...rest } of all) assert.deepEqual(rest, visible.get(id));
  },
);
