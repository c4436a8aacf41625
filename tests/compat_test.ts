/**
 * connect-pg-simple 10 and this store side by side, on one table of one
 * server: what one writes the other reads, both agree on expiry, pruning,
 * names and table creation, and every difference is pinned down here (the
 * README's "Migrating from connect-pg-simple" lists them with their reasons).
 */
import assert from "node:assert/strict";
import session from "express-session";
import type { SessionData } from "express-session";
import connectPgSimple from "connect-pg-simple";
import pg from "pg";
import {
  BEHIND_PGBOUNCER,
  connect,
  DATABASE_URL,
  nowSeconds,
  sessionData,
  storeTest,
  type TestBed,
  viaCallback,
} from "./_helpers.ts";

/** connect-pg-simple's store, as far as these tests use it (the package ships no types). */
interface PgStore {
  ttl: number | undefined;
  get(sid: string, cb: (err: Error | null, sess?: unknown) => void): void;
  set(sid: string, sess: unknown, cb?: (err: Error | null) => void): void;
  destroy(sid: string, cb?: (err: Error | null) => void): void;
  touch(sid: string, sess: unknown, cb?: (err: Error | null) => void): void;
  pruneSessions(cb?: (err: Error | null) => void): void;
  quotedTable(): string;
  close(): Promise<void>;
}

/** connect-pg-simple's options used here. */
interface PgStoreOptions {
  pool?: PgPool;
  schemaName?: string;
  tableName?: string;
  ttl?: number;
  createTableIfMissing?: boolean;
  pruneSessionInterval?: number | false;
  pruneSessionRandomizedInterval?: false | ((delayMs: number) => number);
  disableTouch?: boolean;
  errorLog?: (...args: unknown[]) => void;
}

/** A `pg` pool, as far as these tests use it. */
interface PgPool {
  end(): Promise<void>;
}

type OurStore = ReturnType<TestBed["store"]>;
type OurOptions = NonNullable<Parameters<TestBed["store"]>[0]>;
type Sql = ReturnType<typeof connect>;

const PgStoreClass = (connectPgSimple as (s: unknown) => new (
  options: PgStoreOptions,
) => PgStore)(session);

/** What a side-by-side test gets on top of {@linkcode TestBed}. */
interface CompatBed extends TestBed {
  /** A pg pool on the test server, ended after the test. */
  pool: PgPool;
  /** A connect-pg-simple store on the test's table (no pruning unless asked), closed after the test. */
  pgStore(options?: PgStoreOptions): PgStore;
  /** A pg pool with extra settings (e.g. `options: "-c TimeZone=..."`), ended after the test. */
  newPool(config?: Record<string, unknown>): PgPool;
  /** A postgres.js connection with extra settings, ended after the test. */
  newSql(options?: Parameters<typeof connect>[0]): Sql;
}

function compatTest(
  name: string,
  fn: (bed: CompatBed) => Promise<void>,
  options?: { createTable?: boolean; skip?: string | false },
): void {
  storeTest(name, async (bed) => {
    const pools: PgPool[] = [];
    const sqls: Sql[] = [];
    const pgStores: PgStore[] = [];
    const ours: OurStore[] = [];
    const newPool = (config: Record<string, unknown> = {}): PgPool => {
      const pool = new pg.Pool({
        connectionString: DATABASE_URL,
        max: 2,
        ...config,
      }) as PgPool;
      pools.push(pool);
      return pool;
    };
    const pool = newPool();
    try {
      await fn({
        ...bed,
        pool,
        newPool,
        newSql(options) {
          const sql = connect(options);
          sqls.push(sql);
          return sql;
        },
        store(options) {
          const store = bed.store(options);
          ours.push(store);
          return store;
        },
        pgStore(options = {}) {
          const store = new PgStoreClass({
            pool,
            schemaName: bed.schema,
            pruneSessionInterval: false,
            ...options,
          });
          pgStores.push(store);
          return store;
        },
      });
    } finally {
      await Promise.allSettled([...pgStores, ...ours].map((s) => s.close()));
      await Promise.allSettled(pools.map((p) => p.end()));
      await Promise.allSettled(sqls.map((s) => s.end()));
    }
  }, options);
}

/** Turns a connect-pg-simple call into a promise of its callback's result. */
function pgCall<T = void>(
  fn: (cb: (err: Error | null, result?: T) => void) => void,
): Promise<T | undefined> {
  return new Promise((resolve, reject) =>
    fn((err, result) => err ? reject(err) : resolve(result))
  );
}

/** connect-pg-simple's `get`, with "no session" as `null` like ours. */
async function pgGet(store: PgStore, sid: string): Promise<unknown> {
  return (await pgCall<unknown>((cb) => store.get(sid, cb))) ?? null;
}

/** A session as it comes back from JSON (Dates become strings). */
function stored<T>(value: T): T {
  return JSON.parse(JSON.stringify(value));
}

/** A row's raw columns as PostgreSQL holds them. */
async function rawRow(
  sql: Sql,
  table: string,
  sid: string,
): Promise<{ sess: string; expire: string } | undefined> {
  const [row] = await sql.unsafe(
    `SELECT sess::text AS sess, expire::text AS expire FROM ${table} WHERE sid = $1`,
    [sid],
  );
  return row ? { sess: row.sess, expire: row.expire } : undefined;
}

async function sids(sql: Sql, table: string): Promise<string[]> {
  const rows = await sql.unsafe(`SELECT sid FROM ${table} ORDER BY sid`);
  return rows.map((row) => row.sid as string);
}

/** Runs `fn` while capturing `console.warn`; resolves to the warnings. */
function captureWarnings(fn: () => void): string[] {
  const warnings: string[] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => {
    warnings.push(args.map(String).join(" "));
  };
  try {
    fn();
  } finally {
    console.warn = original;
  }
  return warnings;
}

/** Resolves when `predicate` holds, polling; rejects after `ms`. */
async function until(
  predicate: () => boolean,
  what: string,
  ms = 5000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const DEPRECATION =
  'DEPRECATION WARNING: Schema should be provided through its dedicated "schemaName" option rather than through "tableName"';

const CASES: Record<string, SessionData> = {
  "with cookie.expires": sessionData({ user: "ada", visits: 3 }),
  "without cookie.expires": sessionData({ user: "bob" }, null),
  "nested": sessionData({
    deep: { a: [1, { b: [null, true, 1.5e300, -0] }], c: { d: { e: {} } } },
  }),
  "unicode": sessionData({
    text: 'héllo wörld — 日本語 🎉 \u0000 \u2028 "quoted" \\ back',
    "ключ 🔑": "значение",
  }),
  "large": sessionData({
    big: "x".repeat(1024 * 1024),
    list: [...Array(5000).keys()],
  }),
};

// --- reading and writing ---------------------------------------------------

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

// --- expiry ----------------------------------------------------------------

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
  "a prune by either removes exactly the expired rows",
  async ({ store, pgStore, sql, table }) => {
    const ours = store();
    const theirs = pgStore();
    const fill = async () => {
      for (
        const [sid, inSeconds] of [["a", -60], ["b", 60], ["c", -1]] as const
      ) {
        await pgCall((cb) =>
          theirs.set(`pg-${sid}`, sessionData({}, inSeconds), cb)
        );
        await ours.set(`ours-${sid}`, sessionData({}, inSeconds));
      }
      await ours.set("no-expiry", sessionData({}, null));
    };
    const live = ["no-expiry", "ours-b", "pg-b"];

    await fill();
    assert.deepEqual(await viaCallback((cb) => theirs.pruneSessions(cb)), {
      error: null,
      result: undefined,
      calls: 1,
    });
    assert.deepEqual(await sids(sql, table), live);

    await fill();
    assert.equal(
      await ours.pruneSessions(),
      4,
      "resolves to the number deleted",
    );
    assert.deepEqual(await sids(sql, table), live);

    await fill();
    assert.deepEqual(await viaCallback((cb) => ours.pruneSessions(cb)), {
      error: null,
      result: 4,
      calls: 1,
    });
    assert.deepEqual(await sids(sql, table), live);
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

// --- the table -------------------------------------------------------------

/** A table's shape, with its own schema and name written as `T`. */
async function shape(sql: Sql, schema: string, table: string) {
  const oid = (await sql.unsafe(
    "SELECT format('%I.%I', $1::text, $2::text)::regclass::oid AS oid",
    [schema, table],
  ))[0].oid;
  const columns = await sql.unsafe(
    `SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull, co.collname
     FROM pg_attribute a LEFT JOIN pg_collation co ON co.oid = a.attcollation
     WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [oid],
  );
  // PostgreSQL 18 lists NOT NULL as constraints too: compare keys and indexes.
  const constraints = await sql.unsafe(
    `SELECT conname, pg_get_constraintdef(oid) AS def, condeferrable, condeferred
     FROM pg_constraint WHERE conrelid = $1 AND contype <> 'n' ORDER BY conname`,
    [oid],
  );
  const indexes = await sql.unsafe(
    `SELECT c.relname, pg_get_indexdef(i.indexrelid) AS def
     FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE i.indrelid = $1 ORDER BY c.relname`,
    [oid],
  );
  const qualified = `${
    (await sql.unsafe("SELECT format('%I.%I', $1::text, $2::text) AS q", [
      schema,
      table,
    ]))[0].q
  }`;
  return JSON.parse(
    JSON.stringify({ columns, constraints, indexes }).replaceAll(
      JSON.stringify(qualified).slice(1, -1),
      "T",
    ),
  );
}

async function roundTrip(ours: OurStore, theirs: PgStore): Promise<void> {
  const [one, two] = [sessionData({ by: "pg" }), sessionData({ by: "ours" })];
  await pgCall((cb) => theirs.set("from-pg", one, cb));
  await ours.set("from-ours", two);
  assert.deepEqual(await ours.get("from-pg"), stored(one));
  assert.deepEqual(await pgGet(theirs, "from-ours"), stored(two));
}

compatTest(
  "a table made by our createTableIfMissing is table.sql's and serves connect-pg-simple",
  async ({ store, pgStore, sql, schema }) => {
    const ours = store({ createTableIfMissing: true });
    await ours.length();
    const other = `${schema}_cps`;
    await sql.unsafe(`CREATE SCHEMA "${other}"`);
    try {
      const theirs = pgStore({ createTableIfMissing: true, schemaName: other });
      await pgGet(theirs, "nothing");
      assert.deepEqual(
        await shape(sql, schema, "session"),
        await shape(sql, other, "session"),
      );
      await roundTrip(ours, pgStore());
    } finally {
      await sql.unsafe(`DROP SCHEMA "${other}" CASCADE`);
    }
  },
  { createTable: false },
);

compatTest(
  "a table made by connect-pg-simple's createTableIfMissing serves our store",
  async ({ store, pgStore, sql, schema }) => {
    const tableName = "Web Sessions";
    const theirs = pgStore({ createTableIfMissing: true, tableName });
    await pgGet(theirs, "nothing");
    const before = await shape(sql, schema, tableName);
    const ours = store({ createTableIfMissing: true, tableName });
    await roundTrip(ours, theirs);
    assert.deepEqual(await shape(sql, schema, tableName), before);
  },
  { createTable: false },
);

compatTest(
  "difference: createTableIfMissing names the constraint and index after the table",
  async ({ store, pgStore, sql, schema, table }) => {
    // The test's schema already holds `session`, made by table.sql.
    const theirs = pgStore({ createTableIfMissing: true, tableName: "other" });
    await assert.rejects(
      pgCall((cb) => theirs.set("x", sessionData(), cb)),
      /"session_pkey" already exists/,
    );
    const ours = store({ createTableIfMissing: true, tableName: "other" });
    await ours.set("x", sessionData());
    const { constraints, indexes } = await shape(sql, schema, "other");
    assert.deepEqual(
      [
        constraints.map((c: { conname: string }) => c.conname),
        indexes.map((i: { relname: string }) => i.relname),
      ],
      [["other_pkey"], ["IDX_other_expire", "other_pkey"]],
    );
    await roundTrip(ours, pgStore({ tableName: "other" }));
    assert.equal((await sids(sql, table)).length, 0);
  },
);

compatTest(
  "difference: our createTableIfMissing creates the schema, connect-pg-simple's does not",
  async ({ store, pgStore, sql, schema }) => {
    const missing = `${schema}_new`;
    try {
      const theirs = pgStore({
        createTableIfMissing: true,
        schemaName: missing,
      });
      await assert.rejects(
        pgCall((cb) => theirs.set("x", sessionData(), cb)),
        /schema .* does not exist/,
      );
      const ours = store({ createTableIfMissing: true, schemaName: missing });
      await ours.set("x", sessionData({ n: 1 }));
      await roundTrip(ours, pgStore({ schemaName: missing }));
    } finally {
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${missing}" CASCADE`);
    }
  },
  { createTable: false },
);

compatTest(
  "difference: our createTableIfMissing retries after a failure, connect-pg-simple's keeps failing",
  async ({ store, pgStore, sql, schema }) => {
    // A type named like the table blocks CREATE TABLE until it is dropped.
    await sql.unsafe(`CREATE DOMAIN "${schema}"."session" AS int`);
    const theirs = pgStore({ createTableIfMissing: true });
    const ours = store({ createTableIfMissing: true });
    await assert.rejects(
      pgCall((cb) => theirs.set("x", sessionData(), cb)),
      /already exists/,
    );
    await assert.rejects(ours.set("x", sessionData()), /already exists/);
    await sql.unsafe(`DROP DOMAIN "${schema}"."session"`);
    await ours.set("x", sessionData());
    await assert.rejects(
      pgCall((cb) => theirs.set("y", sessionData(), cb)),
      /already exists/,
    );
    await roundTrip(ours, pgStore());
  },
  { createTable: false },
);

// --- names -----------------------------------------------------------------

compatTest(
  "odd schema and table names address the same table in both",
  async ({ store, pgStore, sql, schema }) => {
    const pairs = [
      ['Odd "Schema". x', 'My "Sessions". y'],
      ["Ünïcødé Schéma 🎉", "Séssions ✓"],
      ["UPPER case", "Table.With.Dots"],
    ];
    const made: string[] = [];
    try {
      for (const [i, [schemaPart, tableName]] of pairs.entries()) {
        const schemaName = `${schemaPart} ${schema}`;
        made.push(schemaName);
        const ours = store({
          createTableIfMissing: true,
          schemaName,
          tableName,
        });
        const theirs = pgStore({ schemaName, tableName });
        await ours.length();
        const quote = (s: string) => `"${s.replaceAll('"', '""')}"`;
        assert.equal(
          theirs.quotedTable(),
          `${quote(schemaName)}.${quote(tableName)}`,
        );
        await roundTrip(ours, theirs);
        const [{ count }] = await sql.unsafe(
          `SELECT count(*)::int AS count FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'r'`,
          [schemaName, tableName],
        );
        assert.equal(count, 1, `pair ${i}: exactly that table`);
        assert.deepEqual(
          await sids(sql, `${quote(schemaName)}.${quote(tableName)}`),
          ["from-ours", "from-pg"],
        );
      }
    } finally {
      for (const name of made) {
        await sql.unsafe(
          `DROP SCHEMA IF EXISTS "${name.replaceAll('"', '""')}" CASCADE`,
        );
      }
    }
  },
);

compatTest(
  "without schemaName both use the connection's search_path; a dot is part of the table name",
  async ({ store, pgStore, newSql, newPool, sql, schema }) => {
    const ourSql = newSql({ connection: { search_path: schema } });
    const pool = newPool({ options: `-c search_path=${schema}` });
    await roundTrip(
      store({ postgres: ourSql, schemaName: undefined }),
      pgStore({ pool, schemaName: undefined }),
    );
    assert.deepEqual(await sids(sql, `"${schema}"."session"`), [
      "from-ours",
      "from-pg",
    ]);

    await sql.unsafe(
      `CREATE TABLE "${schema}"."a.b" (LIKE "${schema}"."session" INCLUDING ALL)`,
    );
    await roundTrip(
      store({ postgres: ourSql, schemaName: undefined, tableName: "a.b" }),
      pgStore({ pool, schemaName: undefined, tableName: "a.b" }),
    );
    assert.deepEqual(await sids(sql, `"${schema}"."a.b"`), [
      "from-ours",
      "from-pg",
    ]);
  },
  {
    skip: BEHIND_PGBOUNCER &&
      "PgBouncer refuses per-connection startup settings",
  },
);

compatTest(
  "the legacy tableName 'schema\".\"table' works in both, with the same deprecation warning",
  async ({ store, pgStore, sql, schema }) => {
    await sql.unsafe(
      `CREATE TABLE "${schema}"."legacy" (LIKE "${schema}"."session" INCLUDING ALL)`,
    );
    const tableName = `${schema}"."legacy`;
    let theirs: PgStore | undefined;
    let ours: OurStore | undefined;
    const theirWarnings = captureWarnings(() => {
      theirs = pgStore({ schemaName: undefined, tableName });
    });
    const ourWarnings = captureWarnings(() => {
      ours = store({ schemaName: undefined, tableName });
    });
    assert.deepEqual(theirWarnings, [DEPRECATION]);
    assert.deepEqual(ourWarnings, theirWarnings);
    assert.equal(theirs!.quotedTable(), `"${schema}"."legacy"`);
    await roundTrip(ours!, theirs!);
    assert.deepEqual(await sids(sql, `"${schema}"."legacy"`), [
      "from-ours",
      "from-pg",
    ]);
  },
);

compatTest(
  'a legacy-looking tableName that is not schema"."table stays one name in both, with the warning',
  async ({ store, pgStore, newSql, newPool, sql, schema }) => {
    const tableName = 'a"."b"."c';
    const quoted = `"${schema}"."a"".""b"".""c"`;
    await sql.unsafe(
      `CREATE TABLE ${quoted} (LIKE "${schema}"."session" INCLUDING ALL)`,
    );
    let theirs: PgStore | undefined;
    let ours: OurStore | undefined;
    const pool = newPool({ options: `-c search_path=${schema}` });
    const ourSql = newSql({ connection: { search_path: schema } });
    const warnings = [
      ...captureWarnings(() => {
        theirs = pgStore({ pool, schemaName: undefined, tableName });
      }),
      ...captureWarnings(() => {
        ours = store({ postgres: ourSql, schemaName: undefined, tableName });
      }),
    ];
    assert.deepEqual(warnings, [DEPRECATION, DEPRECATION]);
    await roundTrip(ours!, theirs!);
    assert.deepEqual(await sids(sql, quoted), ["from-ours", "from-pg"]);
  },
  {
    skip: BEHIND_PGBOUNCER &&
      "PgBouncer refuses per-connection startup settings",
  },
);

compatTest(
  'with schemaName given, a tableName holding "." gets no warning in either',
  ({ store, pgStore }) => {
    const warnings = captureWarnings(() => {
      pgStore({ tableName: 'x"."y' });
      store({ tableName: 'x"."y' });
    });
    assert.deepEqual(warnings, []);
    return Promise.resolve();
  },
);

// --- options, timers, errors -------------------------------------------------

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

compatTest(
  "difference: the pg-only options are refused with a pointer to `postgres`",
  ({ store, pool }) => {
    const refused = {
      pool,
      conString: DATABASE_URL,
      conObject: { connectionString: DATABASE_URL },
      pgPromise: { any: () => [] },
    };
    for (const [key, value] of Object.entries(refused)) {
      assert.throws(
        () => store({ [key]: value } as OurOptions),
        (error: Error) =>
          error instanceof TypeError && /`postgres`/.test(error.message),
        key,
      );
    }
    return Promise.resolve();
  },
);

compatTest(
  "the prune timer starts on first use, asking the randomiser with the interval in ms",
  async ({ store, pgStore }) => {
    const calls = { pg: [] as number[], ours: [] as number[] };
    const randomizer = (list: number[]) => (delayMs: number) => {
      list.push(delayMs);
      return 2 ** 30;
    };
    const theirs = pgStore({
      pruneSessionInterval: 3600,
      pruneSessionRandomizedInterval: randomizer(calls.pg),
    });
    const ours = store({
      pruneSessionInterval: 3600,
      pruneSessionRandomizedInterval: randomizer(calls.ours),
    });
    assert.deepEqual(calls, { pg: [], ours: [] }, "not at construction");
    await pgGet(theirs, "x");
    await ours.get("x");
    await pgGet(theirs, "x");
    await ours.get("x");
    assert.deepEqual(calls, { pg: [3_600_000], ours: [3_600_000] });
    // Difference: a manual prune with a callback restarts our timer only.
    await pgCall((cb) => theirs.pruneSessions(cb));
    await viaCallback((cb) => ours.pruneSessions(cb));
    assert.deepEqual(calls, { pg: [3_600_000], ours: [3_600_000, 3_600_000] });
  },
);

compatTest(
  "pruneSessionInterval false: neither store prunes nor asks the randomiser",
  async ({ store, pgStore }) => {
    const calls: number[] = [];
    const options = {
      pruneSessionInterval: false as const,
      pruneSessionRandomizedInterval: (d: number) => (calls.push(d), 1),
    };
    const theirs = pgStore(options);
    const ours = store(options);
    await pgCall((cb) => theirs.set("x", sessionData(), cb));
    await ours.set("y", sessionData());
    await pgCall((cb) => theirs.touch("x", sessionData(), cb));
    await ours.touch("y", sessionData());
    assert.deepEqual(calls, []);
  },
);

compatTest(
  "the randomiser's result is the delay, and it is asked again after each prune",
  async ({ store, pgStore, insert, row }) => {
    const run = async (
      start: (randomizer: (d: number) => number) => Promise<unknown>,
      sid: string,
    ) => {
      await insert(sid, "{}", nowSeconds() - 60);
      const calls: number[] = [];
      await start((d) => (calls.push(d), calls.length === 1 ? 1 : 2 ** 30));
      await until(() => calls.length === 2, "the next prune's delay");
      assert.deepEqual(calls, [5_000, 5_000]);
      assert.equal(await row(sid), undefined, "the 1 ms timer pruned");
    };
    await run(
      (r) =>
        pgGet(
          pgStore({
            pruneSessionInterval: 5,
            pruneSessionRandomizedInterval: r,
          }),
          "x",
        ),
      "expired-pg",
    );
    await run(
      (r) =>
        store({ pruneSessionInterval: 5, pruneSessionRandomizedInterval: r })
          .get("x"),
      "expired-ours",
    );
  },
);

compatTest(
  "a failed automatic prune goes to errorLog('Failed to prune sessions:', err) in both, and pruning goes on",
  async ({ store, pgStore }) => {
    const logs = { pg: [] as unknown[][], ours: [] as unknown[][] };
    const calls = { pg: 0, ours: 0 };
    const options = (which: "pg" | "ours") => ({
      tableName: "missing",
      pruneSessionInterval: 5,
      pruneSessionRandomizedInterval: () => ++calls[which] === 1 ? 1 : 2 ** 30,
      errorLog: (...args: unknown[]) => logs[which].push(args),
    });
    await pgGet(pgStore(options("pg")), "x").catch(() => {});
    await store(options("ours")).get("x").catch(() => {});
    await until(
      () =>
        logs.pg.length === 1 && logs.ours.length === 1 && calls.pg === 2 &&
        calls.ours === 2,
      "both prunes to fail and reschedule",
    );
    for (const [[message, error]] of [logs.pg, logs.ours]) {
      assert.equal(message, "Failed to prune sessions:");
      assert.equal((error as { code: string }).code, "42P01");
      assert.match(
        (error as Error).message,
        /relation ".*missing" does not exist/,
      );
    }
  },
);

compatTest(
  "the default randomiser spreads the delay over 50–150 % of the interval in both",
  async ({ store, pgStore }) => {
    const intervalMs = 600;
    const fired = new Map<string, number>();
    const options = (name: string) => ({
      tableName: `missing_${name}`,
      pruneSessionInterval: intervalMs / 1000,
      errorLog: () => fired.has(name) || fired.set(name, Date.now()),
    });
    const random = Math.random;
    const started = Date.now();
    try {
      for (const [low, value] of [["low", 0], ["high", 1 - 1e-9]] as const) {
        Math.random = () => value;
        // The delay is drawn synchronously, at first use.
        pgGet(pgStore(options(`pg_${low}`)), "x").catch(() => {});
        store(options(`ours_${low}`)).get("x").catch(() => {});
      }
    } finally {
      Math.random = random;
    }
    await until(() => fired.size === 4, "four failed prunes", 10_000);
    const elapsed = (name: string) => fired.get(name)! - started;
    for (const who of ["pg", "ours"]) {
      assert.ok(
        elapsed(`${who}_low`) >= intervalMs / 2 - 1,
        `${who} low: ${elapsed(`${who}_low`)}`,
      );
      assert.ok(
        elapsed(`${who}_low`) < intervalMs,
        `${who} low: ${elapsed(`${who}_low`)}`,
      );
      assert.ok(
        elapsed(`${who}_high`) >= intervalMs * 1.5 - 2,
        `${who} high: ${elapsed(`${who}_high`)}`,
      );
    }
  },
);

compatTest(
  "difference: a manual pruneSessions() without a callback that fails is logged by connect-pg-simple, rejected by ours",
  async ({ store, pgStore }) => {
    const logs = { pg: [] as unknown[][], ours: [] as unknown[][] };
    const theirs = pgStore({
      tableName: "missing",
      errorLog: (...args: unknown[]) => logs.pg.push(args),
    });
    const ours = store({
      tableName: "missing",
      errorLog: (...args: unknown[]) => logs.ours.push(args),
    });
    theirs.pruneSessions();
    await assert.rejects(ours.pruneSessions(), /does not exist/);
    await until(() => logs.pg.length === 1, "connect-pg-simple's log");
    assert.equal(logs.pg[0][0], "Failed to prune sessions:");
    assert.deepEqual(logs.ours, []);
    // With a callback, both hand the error to the callback and log nothing.
    const [a, b] = [
      await viaCallback((cb) => theirs.pruneSessions(cb)),
      await viaCallback((cb) => ours.pruneSessions(cb)),
    ];
    assert.match(String(a.error), /does not exist/);
    assert.match(String(b.error), /does not exist/);
    assert.equal(logs.pg.length + logs.ours.length, 1);
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
