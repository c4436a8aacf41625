import { test } from "node:test";
import assert from "node:assert/strict";
import session from "express-session";
import {
  connect,
  connectPostgresSimple,
  PostgresStoreClass,
  sessionData,
  storeTest,
} from "./_helpers.ts";

function rejects(options: unknown, pattern: RegExp): void {
  assert.throws(
    () => new PostgresStoreClass(options as never),
    (error: unknown) =>
      error instanceof TypeError && pattern.test(error.message),
  );
}

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

test("options of the wrong type are a TypeError naming the option", () => {
  rejects({ ttl: -1 }, /`ttl`.*positive/);
  rejects({ ttl: "60" }, /`ttl`/);
  rejects({ ttl: Number.NaN }, /`ttl`/);
  rejects({ ttl: Infinity }, /`ttl`/);
  rejects({ pruneSessionInterval: "x" }, /`pruneSessionInterval`/);
  rejects({ pruneSessionInterval: -5 }, /`pruneSessionInterval`/);
  rejects({ pruneSessionInterval: true }, /`pruneSessionInterval`/);
  rejects(
    { pruneSessionRandomizedInterval: true },
    /`pruneSessionRandomizedInterval`/,
  );
  rejects(
    { pruneSessionRandomizedInterval: 5 },
    /`pruneSessionRandomizedInterval`/,
  );
  rejects({ tableName: "" }, /`tableName`.*non-empty/);
  rejects({ tableName: 42 }, /`tableName`/);
  rejects({ tableName: "a\0b" }, /`tableName`.*NUL/);
  rejects({ schemaName: "" }, /`schemaName`/);
  rejects({ tableName: "x".repeat(64) }, /`tableName`.*63 bytes/);
  rejects({ schemaName: "é".repeat(32) }, /`schemaName`.*63 bytes/);
  rejects({ createTableIfMissing: "yes" }, /`createTableIfMissing`.*boolean/);
  rejects({ disableTouch: 1 }, /`disableTouch`.*boolean/);
  rejects({ errorLog: "console" }, /`errorLog`.*function/);
  rejects({ touchAfter: -1 }, /`touchAfter`/);
  rejects({ postgres: {} }, /`postgres`.*postgres\.js/);
  rejects({ postgres: "postgres://localhost/db" }, /`postgres`/);
  rejects({ postgres: () => {} }, /`postgres`/);
  rejects("postgres://x", /options must be an object/);
  rejects(null, /options must be an object/);
});

test("connect-pg-simple's pg-only options point to `postgres`", () => {
  for (const key of ["pool", "pgPromise", "conString", "conObject"]) {
    rejects({ [key]: {} }, new RegExp(`\`${key}\`.*\`postgres\``));
  }
});

test("an unknown option is refused, so a typo cannot pass silently", () => {
  rejects({ tll: 60 }, /unknown option `tll`/);
});

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
