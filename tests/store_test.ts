import assert from "node:assert/strict";
import {
  connect,
  nowSeconds,
  sessionData,
  storeTest,
  viaCallback,
} from "./_helpers.ts";

storeTest("set then get returns the session", async ({ store }) => {
  const s = store();
  const data = sessionData({
    user: { name: "Ada", roles: ["admin"] },
    visits: 3,
  });
  await s.set("sid-1", data);
  assert.deepEqual(await s.get("sid-1"), JSON.parse(JSON.stringify(data)));
});

storeTest("get of an unknown id gives null", async ({ store }) => {
  assert.equal(await store().get("nobody"), null);
});

storeTest("get never returns an expired session", async ({ store, row }) => {
  const s = store();
  await s.set("old", sessionData({ a: 1 }, -5));
  assert.ok(await row("old"), "the expired row is still in the table");
  assert.equal(await s.get("old"), null);
});

storeTest(
  "a session expiring this very second is still returned",
  async ({ store, insert }) => {
    await insert("edge", '{"a":1}', nowSeconds() + 1);
    assert.deepEqual(await store().get("edge"), { a: 1 });
  },
);

storeTest("set replaces an existing session", async ({ store, sql, table }) => {
  const s = store();
  await s.set("sid", sessionData({ n: 1 }));
  await s.set("sid", sessionData({ n: 2 }));
  assert.equal((await s.get("sid") as unknown as { n: number }).n, 2);
  const [{ count }] = await sql.unsafe(
    `SELECT count(*)::int AS count FROM ${table}`,
  );
  assert.equal(count, 1);
});

storeTest(
  "expire comes from cookie.expires, rounded up to whole seconds",
  async ({ store, row }) => {
    const s = store({ ttl: 10 });
    const expires = new Date(Date.UTC(2031, 0, 2, 3, 4, 5, 1));
    await s.set("sid", { cookie: { expires } } as never);
    assert.equal(
      (await row("sid"))?.expire,
      Math.ceil(expires.valueOf() / 1000),
    );
  },
);

storeTest(
  "without cookie expiry, expire is now + ttl",
  async ({ store, row }) => {
    const s = store({ ttl: 120 });
    const before = Math.ceil(Date.now() / 1000 + 120);
    await s.set("sid", sessionData({}, null));
    const after = Math.ceil(Date.now() / 1000 + 120);
    const { expire } = (await row("sid"))!;
    assert.ok(
      expire >= before && expire <= after,
      `${expire} in [${before}, ${after}]`,
    );
  },
);

storeTest(
  "without ttl or cookie expiry, a session lasts one day",
  async ({ store, row }) => {
    const before = Math.ceil(Date.now() / 1000 + 86400);
    await store().set("sid", sessionData({}, null));
    const after = Math.ceil(Date.now() / 1000 + 86400);
    const { expire } = (await row("sid"))!;
    assert.ok(expire >= before && expire <= after);
  },
);

storeTest(
  "store.ttl is public and read at each write",
  async ({ store, row }) => {
    const s = store({ ttl: 100 });
    assert.equal(s.ttl, 100);
    s.ttl = 5000;
    const before = Math.ceil(Date.now() / 1000 + 5000);
    await s.set("sid", sessionData({}, null));
    assert.ok((await row("sid"))!.expire >= before);
  },
);

storeTest(
  "touch moves expire and never rewrites the session",
  async ({ store, row }) => {
    const s = store();
    await s.set("sid", sessionData({ keep: "me" }, 60));
    const before = await row("sid");
    await s.touch("sid", sessionData({ keep: "changed", extra: true }, 7200));
    const after = await row("sid");
    assert.equal(after?.sess, before?.sess);
    assert.ok(after!.expire > before!.expire + 7000);
  },
);

storeTest("touch of an unknown id is a quiet no-op", async ({ store, row }) => {
  await store().touch("ghost", sessionData());
  assert.equal(await row("ghost"), undefined);
});

storeTest(
  "touch does not revive an expired session",
  async ({ store, row }) => {
    const s = store();
    await s.set("sid", sessionData({}, -10));
    await s.touch("sid", sessionData({}, 3600));
    assert.equal(await s.get("sid"), null);
    assert.ok((await row("sid"))!.expire < nowSeconds());
  },
);

storeTest("disableTouch makes touch write nothing", async ({ store, row }) => {
  const s = store({ disableTouch: true });
  await s.set("sid", sessionData({}, 60));
  const before = await row("sid");
  await s.touch("sid", sessionData({}, 7200));
  assert.deepEqual(await row("sid"), before);
  assert.deepEqual(
    await viaCallback((cb) => s.touch("sid", sessionData(), cb)),
    {
      error: null,
      result: undefined,
      calls: 1,
    },
  );
});

storeTest(
  "touchAfter skips a touch that moves expire by less than it",
  async ({ store, row, sql, table }) => {
    const s = store({ touchAfter: 60 });
    await s.set("sid", sessionData({}, 3600));
    const version = async () =>
      (await sql.unsafe(
        `SELECT xmin::text AS v FROM ${table} WHERE sid = 'sid'`,
      ))[0].v;
    const [before, rowBefore] = [await version(), await row("sid")];
    await s.touch("sid", sessionData({}, 3630));
    assert.equal(await version(), before, "no new row version");
    assert.deepEqual(await row("sid"), rowBefore);
    await s.touch("sid", sessionData({}, 3700));
    assert.ok((await row("sid"))!.expire >= rowBefore!.expire + 99);
  },
);

storeTest(
  "destroy removes the session, and an unknown id is no error",
  async ({ store }) => {
    const s = store();
    await s.set("sid", sessionData());
    await s.destroy("sid");
    assert.equal(await s.get("sid"), null);
    await s.destroy("never-there");
  },
);

storeTest(
  "all, ids and length see only unexpired sessions",
  async ({ store }) => {
    const s = store();
    await s.set("a", sessionData({ n: 1 }));
    await s.set("b", sessionData({ n: 2 }));
    await s.set("gone", sessionData({ n: 3 }, -60));
    const length = await s.length();
    assert.equal(typeof length, "number");
    assert.equal(length, 2);
    assert.deepEqual((await s.ids()).sort(), ["a", "b"]);
    const all = await s.all();
    assert.deepEqual(
      all.map((x) => [x.id, (x as unknown as { n: number }).n]).sort(),
      [["a", 1], ["b", 2]],
    );
  },
);

storeTest("all, ids and length of an empty table", async ({ store }) => {
  const s = store();
  assert.deepEqual(await s.all(), []);
  assert.deepEqual(await s.ids(), []);
  assert.equal(await s.length(), 0);
});

storeTest(
  "clear removes every row, expired ones too",
  async ({ store, sql, table }) => {
    const s = store();
    await s.set("a", sessionData());
    await s.set("old", sessionData({}, -60));
    await s.clear();
    const [{ count }] = await sql.unsafe(
      `SELECT count(*)::int AS count FROM ${table}`,
    );
    assert.equal(count, 0);
  },
);

storeTest(
  "a session stored as a JSON string is decoded",
  async ({ store, insert }) => {
    await insert(
      "sid",
      JSON.stringify(JSON.stringify({ a: 1 })),
      nowSeconds() + 60,
    );
    assert.deepEqual(await store().get("sid"), { a: 1 });
  },
);

storeTest(
  "an unreadable stored string is destroyed and reads as no session",
  async ({ store, insert, row }) => {
    await insert("bad", JSON.stringify("{not json"), nowSeconds() + 60);
    assert.equal(await store().get("bad"), null);
    assert.equal(await row("bad"), undefined);
  },
);

storeTest(
  "unicode, nested and large sessions round-trip",
  async ({ store }) => {
    const s = store();
    const data = sessionData({
      text: "héllo wörld — 日本語 🎉 \u0000 nul",
      deep: { a: [1, { b: [null, true, 1.5e300] }] },
      big: "x".repeat(1024 * 1024),
    });
    await s.set("sid", data);
    assert.deepEqual(await s.get("sid"), JSON.parse(JSON.stringify(data)));
  },
);

storeTest(
  "touchAfter: the touch that follows a get in the same request needs no round trip",
  async ({ store, row }) => {
    const sent: string[] = [];
    const sql = connect({
      debug: (_connection: number, query: string) => sent.push(query),
    });
    try {
      const s = store({ touchAfter: 60, postgres: sql });
      await s.set("sid", sessionData({ n: 1 }, 3600));
      const before = await row("sid");
      await s.get("sid");
      sent.length = 0;
      await s.touch("sid", sessionData({ n: 1 }, 3630));
      assert.deepEqual(sent, [], "no statement for a touch within touchAfter");
      assert.deepEqual(await row("sid"), before);

      await s.get("sid");
      sent.length = 0;
      await s.touch("sid", sessionData({ n: 1 }, 3700));
      assert.equal(sent.filter((q) => /\bUPDATE\b/.test(q)).length, 1);
      assert.ok(
        (await row("sid"))!.expire >= before!.expire + 99,
        "a larger move is written",
      );
    } finally {
      await sql.end();
    }
  },
);
