// Run by `deno task test:npm` under Node (and `test:bun` under Bun), against the installed package:
// the CommonJS entry point, as connect-pg-simple users write it.
"use strict";
const { test } = require("node:test");
const assert = require("node:assert/strict");
const { readFileSync } = require("node:fs");
const { execFileSync } = require("node:child_process");
const { dirname, join } = require("node:path");
const session = require("express-session");
// Under Bun, postgres.js's "bun" export condition picks its ES module, so
// require() gives the module namespace, and the function is its default.
const postgresModule = require("postgres");
const postgres = postgresModule.default ?? postgresModule;
const connectPostgresSimple = require("connect-postgres-simple");

test("CJS: require() gives the factory, with its named exports attached", () => {
  assert.equal(typeof connectPostgresSimple, "function");
  assert.equal(
    connectPostgresSimple.connectPostgresSimple,
    connectPostgresSimple,
  );
  assert.equal(connectPostgresSimple.default, connectPostgresSimple);
  assert.match(
    require.resolve("connect-postgres-simple"),
    /[\\/]cjs[\\/]index\.js$/,
  );
});

test("CJS: require('connect-postgres-simple')(session) makes a working store", async () => {
  const PostgresStore = require("connect-postgres-simple")(session);
  const sql = postgres(process.env.DATABASE_URL, { onnotice() {}, max: 2 });
  const tableName = `cjs_entry_${process.pid}_${Date.now()}`;
  const store = new PostgresStore({
    postgres: sql,
    tableName,
    createTableIfMissing: true,
    pruneSessionInterval: false,
  });
  try {
    assert.ok(store instanceof session.Store);
    const data = { cookie: { maxAge: 60000 }, user: "ada" };
    await new Promise((resolve, reject) =>
      store.set("sid", data, (error) => error ? reject(error) : resolve())
    );
    const got = await new Promise((resolve, reject) =>
      store.get("sid", (error, s) => error ? reject(error) : resolve(s))
    );
    assert.deepEqual(got, data);
    assert.equal(await store.length(), 1);
  } finally {
    await store.close();
    await sql.unsafe(`DROP TABLE IF EXISTS "${tableName}"`);
    await sql.end();
  }
});

test("CJS: a wrong option is a TypeError naming it", () => {
  const PostgresStore = connectPostgresSimple(session);
  assert.throws(() => new PostgresStore({ ttl: "x" }), {
    name: "TypeError",
    message: /`ttl`/,
  });
});

test("CJS: the package ships table.sql", () => {
  const sql = readFileSync(
    require.resolve("connect-postgres-simple/table.sql"),
    "utf8",
  );
  assert.match(sql, /CREATE TABLE "session"/);
});

test("CJS: npm links the connect-postgres-simple command", () => {
  const manifest = require.resolve("connect-postgres-simple/package.json");
  const bin = join(
    dirname(dirname(manifest)),
    ".bin",
    "connect-postgres-simple",
  );
  const help = execFileSync(bin, ["--help"], { encoding: "utf8" });
  assert.match(help, /prune/);
  assert.match(help, /create-table/);
});
