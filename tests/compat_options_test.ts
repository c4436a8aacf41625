/**
 * connect-pg-simple 10 and this store side by side (options: ttl, the defaults
 * and disableTouch, and where the checks differ). Helpers: `_compat.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { nowSeconds, sessionData } from "./_helpers.ts";
import { compatTest, pgCall, pgGet, rawRow } from "./_compat.ts";

compatTest(
  "store.ttl is public in both, unset by default, and read at each write",
  async ({ store, pgStore, sql, table }) => {
    const ours = store();
    const theirs = pgStore();
    assert.equal(ours.ttl, undefined);
    assert.equal(theirs.ttl, undefined);
    assert.equal(store({ ttl: 42 }).ttl, pgStore({ ttl: 42 }).ttl);
    for (const ttl of [undefined, 5000, 0.5]) {
      ours.ttl = theirs.ttl = ttl;
      for (let attempt = 0;; attempt++) {
        const before = Math.ceil(Date.now() / 1000);
        await pgCall((cb) => theirs.set("pg", sessionData({}, null), cb));
        await ours.set("ours", sessionData({}, null));
        if (Math.ceil(Date.now() / 1000) !== before && attempt < 5) continue;
        const expected = before + (ttl ?? 86400);
        const [[theirs_], [ours_]] = await Promise.all(
          ["pg", "ours"].map((sid) =>
            sql.unsafe(
              `SELECT extract(epoch FROM expire::timestamptz)::float8 AS e FROM ${table} WHERE sid = $1`,
              [sid],
            )
          ),
        );
        assert.equal(ours_.e, theirs_.e, `ttl ${ttl}`);
        assert.ok(
          Math.abs(ours_.e - expected) <= 1,
          `ttl ${ttl}: ${ours_.e} ≈ ${expected}`,
        );
        break;
      }
    }
  },
);

compatTest(
  "difference: ttl 0 and pruneSessionInterval 0 mean the defaults to connect-pg-simple and are refused by ours",
  async ({ store, pgStore, row }) => {
    const delays: number[] = [];
    const theirs = pgStore({
      ttl: 0,
      pruneSessionInterval: 0,
      pruneSessionRandomizedInterval: (d) => (delays.push(d), 2 ** 30),
    });
    await pgCall((cb) => theirs.set("pg", sessionData({}, null), cb));
    assert.deepEqual(delays, [900_000], "the 900 s default interval");
    assert.ok((await row("pg"))!.expire >= nowSeconds() + 86400 - 5, "one day");
    assert.throws(() => store({ ttl: 0 }), TypeError);
    assert.throws(() => store({ pruneSessionInterval: 0 }), TypeError);
  },
);

compatTest(
  "difference: empty schemaName or tableName mean the defaults to connect-pg-simple and are refused by ours",
  ({ store, pgStore, schema }) => {
    assert.equal(
      pgStore({ tableName: "" }).quotedTable(),
      `"${schema}"."session"`,
    );
    assert.equal(pgStore({ schemaName: "" }).quotedTable(), '"session"');
    assert.throws(() => store({ tableName: "" }), TypeError);
    assert.throws(() => store({ schemaName: "" }), TypeError);
    return Promise.resolve();
  },
);

compatTest(
  "difference: the default prune interval is 60 s in ours, 900 s in connect-pg-simple",
  async ({ store, pgStore }) => {
    const calls = { pg: [] as number[], ours: [] as number[] };
    const theirs = pgStore({
      pruneSessionInterval: undefined,
      pruneSessionRandomizedInterval: (d) => (calls.pg.push(d), 2 ** 30),
    });
    const ours = store({
      pruneSessionInterval: undefined,
      pruneSessionRandomizedInterval: (d) => (calls.ours.push(d), 2 ** 30),
    });
    await pgGet(theirs, "x");
    await ours.get("x");
    assert.deepEqual(calls, { pg: [900_000], ours: [60_000] });
  },
);

compatTest(
  "disableTouch: neither store writes on touch",
  async ({ store, pgStore, sql, table }) => {
    const ours = store({ disableTouch: true });
    const theirs = pgStore({ disableTouch: true });
    await ours.set("s", sessionData({}, 60));
    const before = await rawRow(sql, table, "s");
    await pgCall((cb) => theirs.touch("s", sessionData({}, 7200), cb));
    await ours.touch("s", sessionData({}, 7200));
    assert.deepEqual(await rawRow(sql, table, "s"), before);
  },
);
