/**
 * The read cache in one store: its triggers, how it fails when it cannot
 * hear the table, and what a `get` served from memory gives back.
 */
import assert from "node:assert/strict";
import process from "node:process";
import postgres from "postgres";
import {
  BEHIND_PGBOUNCER,
  DATABASE_URL,
  nowSeconds,
  type PostgresSql,
  sessionData,
  storeTest,
  type TestBed,
  viaCallback,
} from "./_helpers.ts";
import { runScript, sibling } from "./_spawn.ts";

const CLI = sibling("../src/cli", import.meta.url);
const DIRECT_URL = process.env.DIRECT_DATABASE_URL;
const ARRIVAL_MS = 10_000;
const needsListen = BEHIND_PGBOUNCER && !DIRECT_URL &&
  "behind PgBouncer LISTEN needs a direct connection (DIRECT_DATABASE_URL)";

/** Stores with `cache`, listening on a direct connection behind PgBouncer. */
function withCache(
  fn: (bed: TestBed, cache: { listen?: PostgresSql }) => Promise<void>,
): (bed: TestBed) => Promise<void> {
  return async (bed) => {
    const listen = BEHIND_PGBOUNCER
      ? postgres(DIRECT_URL!, { max: 1, onnotice: () => {} })
      : undefined;
    try {
      await fn(bed, listen ? { listen } : {});
    } finally {
      await listen?.end();
    }
  };
}

/** The names of the notify triggers on a table. */
async function triggers(sql: PostgresSql, table: string): Promise<string[]> {
  const rows = await sql.unsafe(
    `SELECT tgname FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal ORDER BY tgname`,
    [table],
  );
  return rows.map((row) => row.tgname as string);
}

/** Changes a row without firing its triggers: no store hears of it. */
async function sneak(bed: TestBed, sid: string, value: unknown) {
  await bed.sql.begin(async (tx) => {
    await tx.unsafe("SET LOCAL session_replication_role = replica");
    await tx.unsafe(
      `UPDATE ${bed.table} SET sess = $2::text::json WHERE sid = $1`,
      [sid, JSON.stringify(value)],
    );
  });
}

/** Reads until `done` holds for the session read, yielding between reads. */
async function readUntil(
  get: () => Promise<unknown>,
  done: (session: unknown) => boolean,
  what: string,
): Promise<unknown> {
  const deadline = Date.now() + ARRIVAL_MS;
  for (;;) {
    const session = await get();
    if (done(session)) return session;
    assert.ok(Date.now() < deadline, what);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

storeTest(
  "without the notify triggers the first call fails naming the command; after migrate --notify it works",
  withCache(async (bed, cache) => {
    const store = bed.store({ cache });
    await store.set("s1", sessionData({ v: 1 })).then(
      () => assert.fail("the call should fail"),
      (error) => {
        assert.match(error.message, /no notify triggers/);
        assert.match(
          error.message,
          new RegExp(`migrate --notify --schema-name ${bed.schema}`),
        );
      },
    );
    const retried = await viaCallback((cb) => store.get("s1", cb));
    assert.equal(retried.calls, 1);
    assert.match(String(retried.error), /migrate --notify/);
    assert.deepEqual(await triggers(bed.sql, bed.table), []);

    const migrate = (...flags: string[]) =>
      runScript(CLI, [
        "migrate",
        "--notify",
        ...flags,
        "--schema-name",
        bed.schema,
        "--database-url",
        DIRECT_URL ?? DATABASE_URL,
      ]);
    const dry = await migrate("--dry-run");
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /-- --notify: install the notify triggers/);
    assert.match(
      dry.stdout,
      /CREATE TRIGGER "session_notify" AFTER UPDATE OR DELETE/,
    );
    assert.deepEqual(await triggers(bed.sql, bed.table), []);

    const done = await migrate();
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stdout, /--notify: done in/);
    assert.deepEqual(await triggers(bed.sql, bed.table), [
      "session_notify",
      "session_notify_truncate",
    ]);
    const again = await migrate();
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /nothing to do/);
    await store.set("s1", sessionData({ v: 1 }));
    assert.equal((await store.get("s1") as { v?: number })?.v, 1);
  }),
  { skip: needsListen },
);

storeTest(
  "createTableIfMissing with cache installs the triggers on an existing table and on a new one; without cache it does not",
  withCache(async (bed, cache) => {
    const plain = bed.store({ createTableIfMissing: true });
    await plain.get("x");
    assert.deepEqual(await triggers(bed.sql, bed.table), []);
    const cached = bed.store({ createTableIfMissing: true, cache });
    await cached.get("x");
    assert.deepEqual(await triggers(bed.sql, bed.table), [
      "session_notify",
      "session_notify_truncate",
    ]);
    const fresh = bed.store({
      createTableIfMissing: true,
      cache,
      tableName: "fresh",
    });
    await fresh.set("s", sessionData());
    assert.deepEqual(await triggers(bed.sql, `"${bed.schema}"."fresh"`), [
      "fresh_notify",
      "fresh_notify_truncate",
    ]);
    const dry = await runScript(CLI, [
      "create-table",
      "--notify",
      "--dry-run",
      "--schema-name",
      bed.schema,
      "--table-name",
      "new",
    ]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(
      dry.stdout,
      /CREATE TRIGGER "new_notify" AFTER UPDATE OR DELETE/,
    );
    const made = await runScript(CLI, [
      "create-table",
      "--notify",
      "--schema-name",
      bed.schema,
      "--table-name",
      "new",
    ]);
    assert.equal(made.code, 0, made.stderr);
    assert.deepEqual(await triggers(bed.sql, `"${bed.schema}"."new"`), [
      "new_notify",
      "new_notify_truncate",
    ]);
  }),
  { skip: needsListen },
);

storeTest(
  "a listener that cannot hear the table's notifications fails the first call clearly",
  async (bed) => {
    // Notifications do not cross databases: a listener on another one hears
    // nothing, as one behind PgBouncer in transaction mode does.
    const url = new URL(DIRECT_URL ?? DATABASE_URL);
    url.pathname = "/template1";
    const elsewhere = postgres(url.href, { max: 1, onnotice: () => {} });
    try {
      const store = bed.store({
        cache: { listen: elsewhere },
        createTableIfMissing: true,
      });
      const started = Date.now();
      await assert.rejects(
        store.get("s1"),
        /did not reach the listening connection.*PgBouncer.*cache: \{ listen: sql \}/s,
      );
      assert.ok(Date.now() - started < 8000, "it fails within seconds");
    } finally {
      await elsewhere.end();
    }
  },
);

storeTest(
  "behind PgBouncer in transaction mode, cache without a direct listen connection fails clearly",
  async (bed) => {
    const store = bed.store({ cache: true, createTableIfMissing: true });
    await assert.rejects(
      store.get("s1"),
      /did not reach the listening connection.*PgBouncer/s,
    );
    await assert.rejects(store.get("s1"), /PgBouncer/, "and so does the next");
  },
  { skip: !BEHIND_PGBOUNCER && "runs only behind PgBouncer" },
);

storeTest(
  "a cached get returns a fresh copy each time, equal to what the table gives",
  withCache(async (bed, cache) => {
    const store = bed.store({ cache, createTableIfMissing: true });
    const plain = bed.store();
    await store.set("s1", sessionData({ list: [1, 2], nested: { a: "b" } }));
    const first = await store.get("s1") as unknown as Record<string, unknown>;
    (first.list as number[]).push(3);
    (first.nested as Record<string, string>).a = "changed";
    const second = await store.get("s1");
    assert.notEqual(second, first);
    assert.deepEqual(second, await plain.get("s1"));
    assert.deepEqual((second as unknown as { list: number[] }).list, [1, 2]);
  }),
  { skip: needsListen },
);

storeTest(
  "a store's own writes keep its entry: after its notification comes back, the next get still needs no read",
  withCache(async (bed, cache) => {
    const store = bed.store({ cache, createTableIfMissing: true });
    await store.set("mine", sessionData({ v: 1 }));
    await store.set("mine", sessionData({ v: 2 }));
    await store.touch("mine", sessionData({ v: 2 }, 7200));
    // Notifications arrive in commit order: once the store has heard a
    // change made after its own writes, it has heard theirs too.
    await bed.insert("marker", '{"m":0}', nowSeconds() + 3600);
    await store.get("marker");
    await bed.sql.unsafe(
      `UPDATE ${bed.table} SET sess = '{"m":1}' WHERE sid = 'marker'`,
    );
    await readUntil(
      () => store.get("marker"),
      (s) => (s as { m?: number })?.m === 1,
      "the store hears the marker's change",
    );
    await sneak(bed, "mine", { sneaked: true });
    assert.equal(
      (await store.get("mine") as { v?: number })?.v,
      2,
      "served from memory: its own write's notification did not drop it",
    );
  }),
  { skip: needsListen },
);

storeTest(
  "a cached session expires when the table's copy does, and maxAge bounds its time in memory",
  withCache(async (bed, cache) => {
    const store = bed.store({ cache, createTableIfMissing: true });
    await store.set("short", sessionData({ v: 1 }, 1));
    assert.equal((await store.get("short") as { v?: number })?.v, 1);
    await readUntil(
      () => store.get("short"),
      (s) => s === null,
      "the cached session stops being served when it expires",
    );

    const young = bed.store({
      cache: { ...cache, maxAge: 0.2 },
      createTableIfMissing: true,
    });
    await young.set("s1", sessionData({ v: 1 }));
    await young.get("s1");
    await sneak(bed, "s1", { sneaked: true });
    await readUntil(
      () => young.get("s1"),
      (s) => (s as { sneaked?: boolean })?.sneaked === true,
      "after maxAge the session is read from the table again",
    );
  }),
  { skip: needsListen },
);

storeTest(
  "size: the least recently used session leaves the cache first",
  withCache(async (bed, cache) => {
    const store = bed.store({
      cache: { ...cache, size: 2 },
      createTableIfMissing: true,
    });
    for (const sid of ["s1", "s2", "s3"]) {
      await store.set(sid, sessionData({ sid }));
    }
    await store.get("s2");
    await store.get("s3");
    await store.get("s2"); // s3 is now the least recently used, s1 is gone
    for (const sid of ["s1", "s2", "s3"]) await sneak(bed, sid, { sid: "x" });
    const sids = [];
    for (const sid of ["s2", "s1", "s3"]) {
      sids.push((await store.get(sid) as { sid?: string })?.sid);
    }
    // s2 from memory; s1 read from the table, which drops s3.
    assert.deepEqual(sids, ["s2", "x", "x"]);
  }),
  { skip: needsListen },
);

storeTest(
  "with cache every callback is called once, errors included, and nothing is left unhandled",
  withCache(async (bed, cache) => {
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    process.on("unhandledRejection", onRejection);
    try {
      const store = bed.store({
        cache,
        createTableIfMissing: true,
        touchAfter: 60,
      });
      const s = sessionData({ v: 1 });
      const results = [
        await viaCallback((cb) => store.set("s1", s, cb)),
        await viaCallback<unknown>((cb) => store.get("s1", cb)), // miss
        await viaCallback<unknown>((cb) => store.get("s1", cb)), // hit
        await viaCallback((cb) => store.touch("s1", s, cb)),
        await viaCallback<unknown>((cb) => store.get("none", cb)),
        await viaCallback((cb) => store.destroy("s1", cb)),
        await viaCallback((cb) => store.clear(cb)),
      ];
      for (const result of results) {
        assert.equal(result.calls, 1);
        assert.equal(result.error, null);
      }
      assert.equal((results[2].result as { v?: number }).v, 1);
      const bad = await viaCallback((cb) => store.get(42 as never, cb));
      assert.equal(bad.calls, 1);
      assert.ok(bad.error instanceof TypeError);
      await store.close();
      const closed = await viaCallback((cb) => store.get("s1", cb));
      assert.equal(closed.calls, 1);
      assert.match(String(closed.error), /closed/);
      await new Promise((resolve) => setTimeout(resolve, 0));
      assert.deepEqual(rejections, []);
    } finally {
      process.off("unhandledRejection", onRejection);
    }
  }),
  { skip: needsListen },
);

storeTest(
  "with maxLifetime a cached session is served no longer than get would read it: a row read from the table, a row the store wrote",
  withCache(async (bed, cache) => {
    const store = bed.store({
      cache,
      createTableIfMissing: true,
      maxLifetime: 4,
    });
    await store.get("warm-up"); // adds created and the triggers
    // A row whose expire is a day away but whose lifetime ends in about 3 s
    // (as connect-pg-simple leaves it after a touch), and one the store
    // rewrites: its write caps the expiry at the lifetime's end.
    for (const sid of ["read", "written"]) {
      await bed.sql.unsafe(
        `INSERT INTO ${bed.table} (sid, sess, expire, created)
         VALUES ($1, '{"v":1}', now() + interval '1 day', now() - interval '1 s')`,
        [sid],
      );
    }
    await store.set("written", sessionData({ v: 2 }, 86400));
    assert.equal((await store.get("read") as { v?: number })?.v, 1);
    for (const sid of ["read", "written"]) {
      await sneak(bed, sid, { sneaked: true });
    }
    assert.equal(
      (await store.get("read") as { v?: number })?.v,
      1,
      "the read row is served from memory",
    );
    assert.equal(
      (await store.get("written") as { v?: number })?.v,
      2,
      "the written row is served from memory",
    );
    // maxAge is 60 s: only the lifetime can end them this soon.
    for (const sid of ["read", "written"]) {
      await readUntil(
        () => store.get(sid),
        (s) => s === null,
        `${sid}: not served past the end of its lifetime`,
      );
    }
  }),
  { skip: needsListen },
);

storeTest(
  "sessionsOf reads the table, never the cache",
  withCache(async (bed, cache) => {
    const store = bed.store({
      cache,
      createTableIfMissing: true,
      userKey: "passport.user",
    });
    await store.set("s1", sessionData({ passport: { user: "ada" } }));
    assert.deepEqual(
      (await store.sessionsOf("ada")).map((s) => s.id),
      ["s1"],
    );
    await sneak(bed, "s1", { passport: { user: "bob" } });
    assert.equal(
      (await store.get("s1") as { passport?: { user?: string } })?.passport
        ?.user,
      "ada",
      "get serves the cached session",
    );
    assert.deepEqual(await store.sessionsOf("ada"), []);
    assert.deepEqual(await store.sessionsOf("bob"), [{
      passport: { user: "bob" },
      id: "s1",
    }]);
  }),
  { skip: needsListen },
);
