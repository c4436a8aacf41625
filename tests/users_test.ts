/**
 * Sessions of one user: `userKey`, `sessionsOf`, `destroyOf`, and the index
 * `IDX_<table>_user` that serves them.
 *
 * @module
 */
import assert from "node:assert/strict";
import { sessionData, storeTest, viaCallback } from "./_helpers.ts";
import { HOSTILE_KEYS, nested } from "./_user_keys.ts";

const PASSPORT = { userKey: "passport.user" } as const;

/** A session signed in as `user` through Passport, expiring `inSeconds` from now. */
function signedIn(user: unknown, inSeconds = 3600, extra = {}) {
  return sessionData({ passport: { user }, ...extra }, inSeconds);
}

storeTest(
  "sessionsOf resolves to the user's unexpired sessions, each with its id, like all()",
  async ({ store }) => {
    const s = store(PASSPORT);
    await s.set("ada-laptop", signedIn("ada", 3600, { device: "laptop" }));
    await s.set("ada-phone", signedIn("ada", 600, { device: "phone" }));
    await s.set("ada-old", signedIn("ada", -60));
    await s.set("bob", signedIn("bob"));
    await s.set("anonymous", sessionData({ visits: 3 }));
    await s.set("number", signedIn(42));
    const ada = await s.sessionsOf("ada");
    assert.deepEqual(ada.map((x) => x.id).sort(), ["ada-laptop", "ada-phone"]);
    const all = await s.all();
    for (const session of ada) {
      assert.deepEqual(session, all.find((x) => x.id === session.id));
    }
    assert.deepEqual((await s.sessionsOf("bob")).map((x) => x.id), ["bob"]);
    for (const user of [42, "42", 42n]) {
      const found = await s.sessionsOf(user);
      assert.deepEqual(found.map((x) => x.id), ["number"], String(user));
    }
    assert.deepEqual(await s.sessionsOf("nobody"), []);
  },
);

storeTest(
  "destroyOf deletes every session of the user, expired ones too, and resolves to the count",
  async ({ store, row }) => {
    const s = store(PASSPORT);
    await s.set("a1", signedIn("ada"));
    await s.set("a2", signedIn("ada"));
    await s.set("a3", signedIn("ada", -60));
    await s.set("b1", signedIn("bob"));
    await s.set("none", sessionData());
    assert.equal(await s.destroyOf("ada"), 3);
    for (const sid of ["a1", "a2", "a3"]) {
      assert.equal(await row(sid), undefined);
    }
    assert.deepEqual((await s.ids()).sort(), ["b1", "none"]);
    assert.equal(await s.destroyOf("ada"), 0);
  },
);

storeTest(
  "destroyOf with except keeps that one session: sign out other devices",
  async ({ store }) => {
    const s = store(PASSPORT);
    for (const sid of ["here", "there", "elsewhere"]) {
      await s.set(sid, signedIn("ada"));
    }
    await s.set("bob", signedIn("bob"));
    assert.equal(await s.destroyOf("ada", { except: "here" }), 2);
    assert.deepEqual((await s.sessionsOf("ada")).map((x) => x.id), ["here"]);
    assert.equal(await s.destroyOf("ada", { except: "not-a-session" }), 1);
    assert.deepEqual(await s.ids(), ["bob"]);
  },
);

storeTest(
  "a session without the userKey path is nobody's: never listed, never deleted",
  async ({ store, row }) => {
    const s = store({ userKey: "account.id" });
    await s.set("no-account", sessionData({ visits: 1 }));
    await s.set("account-string", sessionData({ account: "7" }));
    await s.set("account-null", sessionData({ account: { id: null } }));
    await s.set("other-key", sessionData({ account: { name: "7" } }));
    await s.set("match", sessionData({ account: { id: 7 } }));
    assert.deepEqual((await s.sessionsOf(7)).map((x) => x.id), ["match"]);
    assert.deepEqual(await s.sessionsOf("null"), []);
    assert.equal(await s.destroyOf(7), 1);
    for (
      const sid of ["no-account", "account-string", "account-null", "other-key"]
    ) {
      assert.ok(await row(sid), sid);
    }
  },
);

storeTest(
  "a user that is not a non-empty string, a finite number or a bigint is a TypeError, and nothing is deleted",
  async ({ store, sql, table }) => {
    const s = store(PASSPORT);
    await s.set("a", signedIn("undefined"));
    await s.set("b", signedIn("null"));
    await s.set("c", signedIn("[object Object]"));
    const bad = [undefined, null, {}, [], "", Number.NaN, Infinity, true];
    for (const user of bad) {
      const what = String(user);
      await assert.rejects(s.sessionsOf(user as never), TypeError, what);
      await assert.rejects(s.destroyOf(user as never), TypeError, what);
      const viaCb = await viaCallback((cb) => s.destroyOf(user as never, cb));
      assert.ok(viaCb.error instanceof TypeError, what);
      assert.match(viaCb.error.message, /destroyOf needs a user/);
    }
    await assert.rejects(s.destroyOf("a\0b"), /NUL/);
    const [{ count }] = await sql.unsafe(
      `SELECT count(*)::int AS count FROM ${table}`,
    );
    assert.equal(count, 3);
  },
);

storeTest(
  "without userKey, sessionsOf and destroyOf fail with a TypeError naming the option",
  async ({ store, row }) => {
    const s = store();
    await s.set("a", signedIn("ada"));
    for (const call of [() => s.sessionsOf("ada"), () => s.destroyOf("ada")]) {
      await assert.rejects(
        call(),
        (error: unknown) =>
          error instanceof TypeError && /`userKey`/.test(error.message) &&
          /passport\.user/.test(error.message),
      );
    }
    assert.ok(await row("a"));
  },
);

storeTest(
  "destroyOf's options: an object whose except is a session id",
  async ({ store }) => {
    const s = store(PASSPORT);
    await s.set("a", signedIn("ada"));
    await assert.rejects(
      s.destroyOf("ada", "a" as never),
      /options must be an object/,
    );
    await assert.rejects(
      s.destroyOf("ada", { except: 5 } as never),
      /session id must be a string/,
    );
    await assert.rejects(
      s.destroyOf("ada", { except: null } as never),
      /session id must be a string/,
    );
    assert.equal((await s.sessionsOf("ada")).length, 1);
    assert.equal(await s.destroyOf("ada", null as never), 1);
  },
);

storeTest(
  "sessionsOf and destroyOf take a trailing callback",
  async ({ store }) => {
    const s = store(PASSPORT);
    for (const sid of ["a", "b", "c", "d"]) await s.set(sid, signedIn("ada"));
    const listed = await viaCallback<unknown[]>((cb) =>
      s.sessionsOf("ada", cb)
    );
    assert.equal(listed.error, null);
    assert.equal(listed.result?.length, 4);
    assert.deepEqual(
      await viaCallback((cb) => s.destroyOf("ada", { except: "a" }, cb)),
      { error: null, result: 3, calls: 1 },
    );
    assert.deepEqual(
      await viaCallback((cb) => s.destroyOf("ada", undefined, cb)),
      { error: null, result: 1, calls: 1 },
    );
    await s.set("e", signedIn("ada"));
    assert.deepEqual(
      await viaCallback((cb) => s.destroyOf("ada", cb)),
      { error: null, result: 1, calls: 1 },
    );
    const noKey = await viaCallback((cb) => store().sessionsOf("ada", cb));
    assert.ok(noKey.error instanceof TypeError);
  },
);

storeTest(
  "createTableIfMissing makes IDX_<table>_user on the userKey expression",
  async ({ sql, schema, store }) => {
    const s = store({
      ...PASSPORT,
      tableName: "users",
      createTableIfMissing: true,
    });
    await s.set("first", signedIn("u0"));
    const [{ def }] = await sql`
      SELECT pg_get_indexdef(${`${schema}."IDX_users_user"`}::regclass) AS def`;
    assert.match(
      def,
      /USING btree \(+sess #>> '\{passport,user\}'::text\[\]\)+$/,
    );
    assert.deepEqual((await s.sessionsOf("u0")).map((x) => x.id), ["first"]);
  },
  { createTable: false },
);

storeTest(
  "on an existing table, createTableIfMissing builds the index in the background while sessions are served; close() waits for it",
  async ({ sql, table, schema, store, fill }) => {
    await fill("old", 20_000, 3600);
    const s = store({ ...PASSPORT, createTableIfMissing: true });
    await s.set("mine", signedIn("ada"));
    assert.deepEqual((await s.sessionsOf("ada")).map((x) => x.id), ["mine"]);
    await s.close();
    const [index] = await sql`
      SELECT i.indisvalid FROM pg_index i
      WHERE i.indexrelid = to_regclass(${`"${schema}"."IDX_session_user"`})`;
    assert.equal(
      index?.indisvalid,
      true,
      `the index of ${table} is built and valid`,
    );
  },
);

storeTest(
  "an index left invalid by a failed build is rebuilt by createTableIfMissing",
  async ({ sql, schema, table, store }) => {
    const s0 = store(PASSPORT);
    await s0.set("a", signedIn("ada"));
    await s0.set("b", signedIn("ada"));
    // A unique index on two equal owners fails, and a concurrent build that
    // fails leaves its index behind, invalid.
    await assert.rejects(
      sql.unsafe(
        `CREATE UNIQUE INDEX CONCURRENTLY "IDX_session_user" ON ${table} (((sess #>> '{passport,user}'::text[])))`,
      ),
      { code: "23505" },
    );
    const valid = async () => {
      const [row] = await sql`SELECT i.indisvalid, i.indisunique FROM pg_index i
        WHERE i.indexrelid = to_regclass(${`"${schema}"."IDX_session_user"`})`;
      return row;
    };
    assert.deepEqual({ ...await valid() }, {
      indisvalid: false,
      indisunique: true,
    });
    const s = store({ ...PASSPORT, createTableIfMissing: true });
    await s.set("c", signedIn("ada"));
    await s.close();
    assert.deepEqual({ ...await valid() }, {
      indisvalid: true,
      indisunique: false,
    });
  },
);

storeTest(
  "an index of that name on another path is reported to errorLog, and sessionsOf still works",
  async ({ sql, table, store }) => {
    await sql.unsafe(
      `CREATE INDEX "IDX_session_user" ON ${table} ((sess #>> '{other}'))`,
    );
    const logged: unknown[][] = [];
    const s = store({
      ...PASSPORT,
      createTableIfMissing: true,
      errorLog: (...args) => logged.push(args),
    });
    await s.set("a", signedIn("ada"));
    assert.equal((await s.sessionsOf("ada")).length, 1);
    await s.close();
    assert.equal(logged.length, 1);
    assert.match(String(logged[0][0]), /migrate --user-key passport\.user/);
    assert.match(
      String(logged[0][1]),
      /not on the path passport\.user: drop it first/,
    );
  },
);

storeTest(
  "a jsonb sess column works the same, index included",
  async ({ sql, table, store }) => {
    await sql.unsafe(`ALTER TABLE ${table} ALTER COLUMN sess TYPE jsonb`);
    const s = store({ ...PASSPORT, createTableIfMissing: true });
    const session = signedIn("ada", 3600, { n: 1 });
    await s.set("a", session);
    await s.set("b", signedIn(7));
    assert.deepEqual(
      await s.get("a"),
      JSON.parse(JSON.stringify(session)),
    );
    assert.deepEqual((await s.sessionsOf("ada")).map((x) => x.id), ["a"]);
    assert.deepEqual((await s.sessionsOf(7)).map((x) => x.id), ["b"]);
    const again = store(PASSPORT);
    assert.equal(await again.destroyOf("ada"), 1);
    assert.deepEqual(await again.ids(), ["b"]);
  },
);

for (const key of HOSTILE_KEYS) {
  storeTest(
    `a hostile userKey ${
      JSON.stringify(key)
    } matches its own path only, through the index`,
    async ({ sql, schema, store }) => {
      await sql.unsafe(`CREATE TABLE "${schema}"."victim" (x int)`);
      const segments = key.split(".");
      const near = [...segments.slice(0, -1), `${segments.at(-1)}x`];
      const s = store({
        userKey: key,
        tableName: "hostile",
        createTableIfMissing: true,
      });
      await s.set("exact", sessionData(nested(segments, "u")));
      await s.set("near", sessionData(nested(near, "u")));
      await s.set("flat", sessionData({ [key]: "u" }));
      assert.deepEqual((await s.sessionsOf("u")).map((x) => x.id), ["exact"]);
      await s.close();
      const again = store({ userKey: key, tableName: "hostile" });
      assert.equal(await again.destroyOf("u"), 1);
      assert.deepEqual((await again.ids()).sort(), ["flat", "near"]);
      const [{ victim }] =
        await sql`SELECT to_regclass(${`"${schema}"."victim"`})::text AS victim`;
      assert.equal(victim, `${schema}.victim`);
    },
    { createTable: false },
  );
}

storeTest(
  "a destroyOf that fails by callTimeout never applies afterwards",
  async ({ store, sql, table, row }) => {
    const s = store({ ...PASSPORT, callTimeout: 0.3 });
    await s.set("a", signedIn("ada"));
    await s.set("b", signedIn("ada"));
    const locker = await sql.reserve();
    try {
      await locker`BEGIN`;
      await locker.unsafe(`SELECT * FROM ${table} WHERE sid = 'b' FOR UPDATE`);
      await assert.rejects(s.destroyOf("ada"), { code: "CALL_TIMEOUT" });
    } finally {
      await locker`COMMIT`;
      locker.release();
    }
    // The DELETE was waiting for the row lock: once it is free, the
    // statement's cutoff has passed and it rolls back.
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      const [{ n }] = await sql`SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE query LIKE 'WITH w AS (DELETE%' AND state = 'active'`;
      if (n === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(await row("a"), "a is still there");
    assert.ok(await row("b"), "b is still there");
  },
);
