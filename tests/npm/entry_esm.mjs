// Run by `deno task test:npm` under Node, against the installed package:
// the ESM entry point.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import process from "node:process";
import session from "express-session";
import postgres from "postgres";
import connectPostgresSimple, {
  connectPostgresSimple as named,
} from "connect-postgres-simple";

test("ESM: the default export is the factory, and so is the named one", () => {
  assert.equal(typeof connectPostgresSimple, "function");
  assert.equal(named, connectPostgresSimple);
  assert.match(
    import.meta.resolve("connect-postgres-simple"),
    /\/esm\/mod\.js$/,
  );
});

test("ESM: connectPostgresSimple(session) makes a working store", async () => {
  const PostgresStore = connectPostgresSimple(session);
  const sql = postgres(process.env.DATABASE_URL, { onnotice() {}, max: 2 });
  const tableName = `esm_entry_${process.pid}_${Date.now()}`;
  const store = new PostgresStore({
    postgres: sql,
    tableName,
    createTableIfMissing: true,
    pruneSessionInterval: false,
  });
  try {
    assert.ok(store instanceof session.Store);
    await store.set("sid", { cookie: { maxAge: 60000 }, n: 1 });
    assert.deepEqual(await store.get("sid"), {
      cookie: { maxAge: 60000 },
      n: 1,
    });
    assert.deepEqual(await store.ids(), ["sid"]);
  } finally {
    await store.close();
    await sql.unsafe(`DROP TABLE IF EXISTS "${tableName}"`);
    await sql.end();
  }
});

test("ESM: require() from an ES module gets the CommonJS factory", () => {
  const required = createRequire(import.meta.url)("connect-postgres-simple");
  assert.equal(typeof required, "function");
  assert.equal(required.default, required);
  assert.equal(typeof required(session), "function");
});
