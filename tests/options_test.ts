import { test } from "node:test";
import assert from "node:assert/strict";
import session from "express-session";
import pg from "pg";
import {
  connect,
  connectPostgresSimple,
  DATABASE_URL,
  PostgresStoreClass,
  type PostgresStoreOptions,
  sessionData,
  storeTest,
} from "./_helpers.ts";

test("the factory accepts session.Store and session.session.Store", () => {
  assert.equal(typeof connectPostgresSimple(session), "function");
  const Store = connectPostgresSimple({ session: { Store: session.Store } });
  assert.ok(Object.getPrototypeOf(Store.prototype) === session.Store.prototype);
});

test("the factory refuses something that is not express-session", () => {
  assert.throws(() => connectPostgresSimple({} as never), TypeError);
  assert.throws(() => connectPostgresSimple(undefined as never), TypeError);
});

test("a store is an express-session Store", async () => {
  const sql = connect();
  const store = new PostgresStoreClass({ postgres: sql });
  assert.ok(store instanceof session.Store);
  await store.close();
  await sql.end();
});

/**
 * Every way to get the options wrong, and what the `TypeError` must say:
 * the option's name, what it accepts, and what it got. Each row is its own
 * test, checked twice: alone, and beside a valid `postgres` (so neither the
 * store's own pool nor a given `sql` changes the verdict).
 */
const INVALID: readonly (readonly [options: unknown, ...message: RegExp[]])[] =
  [
    [{ ttl: -1 }, /`ttl`.*positive/, /`ttl`.*-1/],
    [{ ttl: 0 }, /`ttl`/],
    [{ ttl: "3600" }, /`ttl`.*"3600"/],
    [{ ttl: Number.NaN }, /`ttl`/],
    [{ ttl: Infinity }, /`ttl`/],
    [{ pruneSessionInterval: "x" }, /`pruneSessionInterval`.*"x"/],
    [{ pruneSessionInterval: -5 }, /`pruneSessionInterval`/],
    [{ pruneSessionInterval: -60 }, /`pruneSessionInterval`/],
    [{ pruneSessionInterval: true }, /`pruneSessionInterval`/],
    [
      { pruneSessionRandomizedInterval: true },
      /`pruneSessionRandomizedInterval`/,
    ],
    [{ pruneSessionRandomizedInterval: 5 }, /`pruneSessionRandomizedInterval`/],
    [{ touchAfter: -1 }, /`touchAfter`/],
    [{ callTimeout: 0 }, /`callTimeout`/],
    [{ callTimeout: -1 }, /`callTimeout`/],
    [{ callTimeout: "10" }, /`callTimeout`/],
    [{ callTimeout: true }, /`callTimeout`/],
    [{ callTimeout: Number.NaN }, /`callTimeout`/],
    // Bounds: past PostgreSQL's timestamps, or too fast to be sane.
    [{ ttl: 1e13 }, /`ttl`.*at most 3155760000 \(100 years\).*10000000000000/],
    [{ ttl: 3155760001 }, /`ttl`.*100 years/],
    [{ touchAfter: 1e12 }, /`touchAfter`.*at most 3155760000/],
    [
      { pruneSessionInterval: 0.001 },
      /`pruneSessionInterval`.*from 1 to 2147483/,
      /0\.001/,
    ],
    [{ pruneSessionInterval: 0.999 }, /`pruneSessionInterval`.*from 1/],
    [{ pruneSessionInterval: 3e6 }, /`pruneSessionInterval`.*24\.8 days/],
    [{ callTimeout: 0.001 }, /`callTimeout`.*from 0\.05/],
    [{ callTimeout: 3e6 }, /`callTimeout`.*2147483/],
    [{ tableName: "" }, /`tableName`.*non-empty/, /`tableName`.*""/],
    [{ tableName: 42 }, /`tableName`.*42/],
    [{ tableName: "a\0b" }, /`tableName`.*NUL/],
    [{ tableName: "x".repeat(64) }, /`tableName`.*63 bytes/],
    [{ tableName: "ß".repeat(40) }, /`tableName`.*63 bytes/],
    [{ schemaName: "" }, /`schemaName`/],
    [{ schemaName: ["public"] }, /`schemaName`.*array/],
    [{ schemaName: "é".repeat(32) }, /`schemaName`.*63 bytes/],
    [{ createTableIfMissing: "yes" }, /`createTableIfMissing`.*boolean/],
    [{ disableTouch: 1 }, /`disableTouch`.*boolean/],
    [{ errorLog: "console" }, /`errorLog`.*function/],
    [{ userKey: "" }, /`userKey`.*non-empty segments/, /`userKey`.*""/],
    [{ userKey: "passport..user" }, /`userKey`.*separated by dots/],
    [{ userKey: ".user" }, /`userKey`/],
    [{ userKey: "passport." }, /`userKey`/],
    [{ userKey: ["passport", "user"] }, /`userKey`.*array/],
    [{ userKey: 42 }, /`userKey`.*42/],
    [{ userKey: "a\0b" }, /`userKey`.*NUL/],
    [{ userKey: "a\uD800" }, /`userKey`.*Unicode/],
    [{ maxLifetime: 0 }, /`maxLifetime`.*positive/],
    [{ maxLifetime: -1 }, /`maxLifetime`/],
    [{ maxLifetime: "3600" }, /`maxLifetime`.*"3600"/],
    [{ maxLifetime: Number.NaN }, /`maxLifetime`/],
    [{ maxLifetime: Infinity }, /`maxLifetime`/],
    [{ maxLifetime: 101 * 365.25 * 86400 }, /`maxLifetime`.*100 years/],
    [{ maxLifetime: true }, /`maxLifetime`/],
    [{ postgres: {} }, /`postgres`.*postgres\.js/],
    [{ postgres: () => {} }, /`postgres`.*postgres\.js/],
    [{ postgres: "postgres://localhost/db" }, /`postgres`.*postgres\.js/],
    [{ postgres: { query() {}, connect() {}, end() {} } }, /`postgres`/],
    // connect-pg-simple's pg-only options, empty and as connect-pg-simple takes them.
    ...["pool", "pgPromise", "conString", "conObject"].map((key) =>
      [{ [key]: {} }, new RegExp(`\`${key}\`.*\`postgres\``)] as const
    ),
    [{ pool: { query() {} } }, /`pool` is for pg/, /`postgres`/],
    [
      { pool: new pg.Pool({ connectionString: DATABASE_URL }) },
      /`pool` is for pg/,
      /`postgres`/,
    ],
    [{ conString: DATABASE_URL }, /`conString` is for pg/, /`postgres`/],
    [
      { conObject: { connectionString: DATABASE_URL } },
      /`conObject`.*`postgres`/,
    ],
    [{ pgPromise: { any: () => [] } }, /`pgPromise`.*`postgres`/],
    // A typo cannot pass silently.
    [{ tll: 60 }, /unknown option `tll`/],
    [{ tablename: "session" }, /unknown option `tablename`/],
    // Not an object at all: checked alone, as spreading it beside `postgres` would hide it.
    ["postgres://x", /options must be an object/],
    [null, /options must be an object/],
    ["session", /options must be an object/],
    [42, /options must be an object/],
    [[], /options must be an object/],
  ];

test("options at their bounds are valid", async () => {
  const sql = connect();
  try {
    for (
      const options of [
        { ttl: 3155760000, touchAfter: 3155760000 },
        { ttl: 0.5, touchAfter: 0 },
        { pruneSessionInterval: 1 },
        { pruneSessionInterval: 2147483 },
        { callTimeout: 0.05 },
        { callTimeout: 2147483 },
        { callTimeout: false, pruneSessionInterval: false },
      ] satisfies PostgresStoreOptions[]
    ) {
      const store = new PostgresStoreClass({ postgres: sql, ...options });
      await store.close();
    }
  } finally {
    await sql.end();
  }
});

storeTest(
  "the longest ttl, 100 years, and the longest touchAfter are stored and honoured",
  async ({ store, row }) => {
    const s = store({ ttl: 3155760000, touchAfter: 3155760000 });
    const data = sessionData({}, null); // no cookie expiry: ttl applies
    await s.set("sid", data);
    const { expire } = (await row("sid"))!;
    assert.ok(Math.abs(expire - (Date.now() / 1000 + 3155760000)) < 5);
    await s.touch("sid", data); // within touchAfter: nothing to write
    assert.equal((await row("sid"))!.expire, expire);
  },
);

/** A row's options as a test name shows them: short, and one name per row. */
function show(value: unknown): string {
  if (typeof value === "function") return "fn";
  if (typeof value === "number") return String(value);
  if (typeof value === "string") {
    return JSON.stringify(
      value.length > 20 ? `${value.slice(0, 8)}…(${value.length})` : value,
    );
  }
  if (Array.isArray(value)) return `[${value.map(show).join(", ")}]`;
  if (value !== null && typeof value === "object") {
    const kind = value.constructor;
    if (kind && kind !== Object) return `a ${kind.name}`;
    const entries = Object.entries(value).map(([k, v]) => `${k}: ${show(v)}`);
    return entries.length === 0 ? "{}" : `{ ${entries.join(", ")} }`;
  }
  return String(value);
}

/** The TypeError constructing a store with `options` throws; fails the test if none. */
function thrownBy(options: unknown): TypeError {
  let thrown: unknown;
  try {
    new PostgresStoreClass(options as never);
  } catch (error) {
    thrown = error;
  }
  assert.ok(thrown instanceof TypeError, `a TypeError, got ${thrown}`);
  return thrown;
}

for (const [options, ...message] of INVALID) {
  test(`option validation: ${show(options)} is a TypeError saying what is wrong`, async () => {
    const alone = thrownBy(options);
    for (const pattern of message) assert.match(alone.message, pattern);
    if (
      typeof options !== "object" || options === null || Array.isArray(options)
    ) {
      return;
    }
    const sql = connect();
    try {
      const beside = thrownBy({ postgres: sql, ...options });
      for (const pattern of message) assert.match(beside.message, pattern);
    } finally {
      await sql.end();
    }
  });
}

storeTest(
  "a table name with quotes, dots, spaces, capitals and unicode is one name",
  async ({ sql, schema, store }) => {
    const tableName = 'My "odd". tåble 🎉';
    const s = store({ tableName, createTableIfMissing: true });
    const data = sessionData({ a: 1 });
    await s.set("sid", data);
    const rows = await sql`
    SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ${schema} AND c.relkind = 'r' ORDER BY 1`;
    assert.deepEqual(rows.map((r) => r.relname), [tableName, "session"]);
    assert.deepEqual(await s.get("sid"), JSON.parse(JSON.stringify(data)));
  },
);

storeTest(
  "the legacy 'schema\".\"table' form warns and addresses schema.table",
  async ({ schema, row }) => {
    const warnings: string[] = [];
    const warn = console.warn;
    console.warn = (message: string) => warnings.push(message);
    const sql = connect();
    let s;
    try {
      s = new PostgresStoreClass({
        postgres: sql,
        tableName: `${schema}"."session`,
        pruneSessionInterval: false,
      });
    } finally {
      console.warn = warn;
    }
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /DEPRECATION WARNING.*schemaName/);
    await s.set("sid", sessionData());
    assert.ok(await row("sid"));
    await s.close();
    await sql.end();
  },
);
