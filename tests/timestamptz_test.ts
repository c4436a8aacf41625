/**
 * The store on either type of `expire`: connect-pg-simple's `timestamp(6)`
 * and `timestamptz`, which `migrate --timestamptz` makes. The same calls,
 * the same results; on `timestamptz`, whatever the connection's TimeZone.
 *
 * @module
 */
import assert from "node:assert/strict";
import { connect, nowSeconds, sessionData, storeTest } from "./_helpers.ts";

const TYPES = ["timestamp(6)", "timestamptz(6)"] as const;

for (const type of TYPES) {
  storeTest(
    `every call works the same on a ${type} expire`,
    async ({ sql, table, store, row, fill }) => {
      if (type !== "timestamp(6)") {
        await sql.unsafe(
          `ALTER TABLE ${table} ALTER COLUMN expire TYPE ${type}`,
        );
      }
      const s = store({ touchAfter: 60 });
      await s.set("a", sessionData({ n: 1 }, 600));
      await s.set("old", sessionData({ n: 2 }, -60));
      assert.equal((await s.get("a") as unknown as { n: number }).n, 1);
      assert.equal(await s.get("old"), null);
      const written = (await row("a"))!.expire;
      assert.ok(Math.abs(written - (nowSeconds() + 600)) <= 1, `${written}`);
      // Within touchAfter: nothing written; beyond it: the expiry moves.
      await s.touch("a", sessionData({}, 630));
      assert.equal((await row("a"))!.expire, written);
      await s.touch("a", sessionData({}, 7200));
      assert.ok((await row("a"))!.expire > written + 6000);
      await s.touch("old", sessionData({}, 7200));
      assert.equal(await s.get("old"), null, "touch never revives");
      assert.deepEqual(await s.ids(), ["a"]);
      assert.equal(await s.length(), 1);
      assert.deepEqual((await s.all()).map((x) => x.id), ["a"]);
      await fill("gone", 1500, -60);
      assert.equal(await s.pruneSessions(), 1501);
      await s.destroy("a");
      assert.equal(await s.length(), 0);
    },
  );
}

storeTest(
  "on a timestamptz expire, stores whose connections use different TimeZones agree",
  async ({ sql, table, store }) => {
    await sql.unsafe(
      `ALTER TABLE ${table} ALTER COLUMN expire TYPE timestamptz(6)`,
    );
    const eastSql = connect({ connection: { TimeZone: "Pacific/Chatham" } });
    const westSql = connect({
      connection: { TimeZone: "America/Los_Angeles" },
    });
    const east = store({ postgres: eastSql });
    const west = store({ postgres: westSql });
    try {
      await east.set("e", sessionData({ by: "east" }, 30));
      await west.set("w", sessionData({ by: "west" }, 30));
      await east.set("e-old", sessionData({}, -30));
      assert.notEqual(await west.get("e"), null);
      assert.notEqual(await east.get("w"), null);
      assert.equal(await west.get("e-old"), null);
      assert.equal(await west.pruneSessions(), 1);
      assert.deepEqual((await east.ids()).sort(), ["e", "w"]);
      const [[e]] = await eastSql`SHOW TimeZone`.values();
      const [[w]] = await westSql`SHOW TimeZone`.values();
      assert.deepEqual([e, w], ["Pacific/Chatham", "America/Los_Angeles"]);
    } finally {
      await east.close();
      await west.close();
      await eastSql.end();
      await westSql.end();
    }
  },
);
