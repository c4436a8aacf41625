import assert from "node:assert/strict";
import { test } from "node:test";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
// Loaded for its table.sql below; importing it is what makes Deno install it.
import "connect-pg-simple";
import {
  connect,
  PostgresStoreClass,
  sessionData,
  storeTest,
  TABLE_SQL,
  uniqueName,
} from "./_helpers.ts";
import type { PostgresSql } from "./_helpers.ts";

/** Everything about a table's shape, with the schema left out so two schemas compare. */
async function shape(
  sql: PostgresSql,
  schema: string,
  table: string,
): Promise<unknown> {
  const columns = await sql`
    SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull,
      coalesce(co.collname, '') AS collation, a.attnum
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_collation co ON co.oid = a.attcollation
    WHERE n.nspname = ${schema} AND c.relname = ${table} AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attnum`;
  const constraints = await sql`
    SELECT con.conname, con.contype, pg_get_constraintdef(con.oid) AS def,
      con.condeferrable, con.condeferred
    FROM pg_constraint con
    JOIN pg_class c ON c.oid = con.conrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ${schema} AND c.relname = ${table} ORDER BY 1`;
  const indexes = await sql`
    SELECT indexname, replace(indexdef, ${`${schema}.`}, '') AS def
    FROM pg_indexes WHERE schemaname = ${schema} AND tablename = ${table} ORDER BY 1`;
  const [options] = await sql`
    SELECT c.reloptions, c.relpersistence FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ${schema} AND c.relname = ${table}`;
  return {
    columns: [...columns],
    constraints: [...constraints],
    indexes: [...indexes],
    options,
  };
}

storeTest(
  "createTableIfMissing makes exactly table.sql's table, schema included",
  async ({ sql, schema }) => {
    const created = uniqueName("made");
    const s = new PostgresStoreClass({
      postgres: sql,
      schemaName: created,
      createTableIfMissing: true,
      pruneSessionInterval: false,
    });
    try {
      await s.set("sid", sessionData({ a: 1 }));
      assert.deepEqual(
        await shape(sql, created, "session"),
        await shape(sql, schema, "session"),
      );
      const names = await sql`
      SELECT conname FROM pg_constraint WHERE connamespace = ${created}::regnamespace
        AND contype <> 'n'
      UNION ALL SELECT indexname FROM pg_indexes WHERE schemaname = ${created} ORDER BY 1`;
      assert.deepEqual(names.map((r) => r.conname), [
        "IDX_session_expire",
        "session_pkey",
        "session_pkey",
      ]);
    } finally {
      await s.close();
      await sql.unsafe(`DROP SCHEMA "${created}" CASCADE`);
    }
  },
);

storeTest(
  "two session tables can share a schema: index and key names follow the table",
  async ({ sql, schema, store }) => {
    const a = store({ tableName: "web_sessions", createTableIfMissing: true });
    const b = store({ tableName: "api_sessions", createTableIfMissing: true });
    await a.set("x", sessionData({ from: "a" }));
    await b.set("x", sessionData({ from: "b" }));
    assert.equal((await a.get("x") as unknown as { from: string }).from, "a");
    assert.equal((await b.get("x") as unknown as { from: string }).from, "b");
    const indexes = await sql`
    SELECT indexname FROM pg_indexes WHERE schemaname = ${schema} ORDER BY 1`;
    assert.deepEqual(indexes.map((r) => r.indexname), [
      "IDX_api_sessions_expire",
      "IDX_session_expire",
      "IDX_web_sessions_expire",
      "api_sessions_pkey",
      "session_pkey",
      "web_sessions_pkey",
    ]);
  },
);

storeTest(
  "long table names get distinct derived names within 63 bytes",
  async ({ sql, schema, store }) => {
    const prefix = "ä".repeat(28);
    const first = store({
      tableName: `${prefix}_one`,
      createTableIfMissing: true,
    });
    const second = store({
      tableName: `${prefix}_two`,
      createTableIfMissing: true,
    });
    await first.set("x", sessionData());
    await second.set("x", sessionData());
    const indexes = await sql`
    SELECT indexname FROM pg_indexes WHERE schemaname = ${schema} AND indexname <> 'session_pkey'
    AND indexname <> 'IDX_session_expire'`;
    assert.equal(indexes.length, 4);
    assert.equal(new Set(indexes.map((r) => r.indexname)).size, 4);
    for (const { indexname } of indexes) {
      assert.ok(new TextEncoder().encode(indexname).length <= 63, indexname);
    }
  },
);

storeTest(
  "createTableIfMissing leaves an existing table alone",
  async ({ store, insert }) => {
    await insert("kept", '{"a":1}', Math.ceil(Date.now() / 1000) + 60);
    const s = store({ createTableIfMissing: true });
    assert.deepEqual(await s.get("kept"), { a: 1 });
  },
);

storeTest(
  "many stores starting at once all create the same table without error",
  async ({ sql }) => {
    const schema = uniqueName("race");
    const connections = Array.from({ length: 10 }, () => connect({ max: 1 }));
    const stores = connections.map((postgres) =>
      new PostgresStoreClass({
        postgres,
        schemaName: schema,
        createTableIfMissing: true,
        pruneSessionInterval: false,
      })
    );
    try {
      const results = await Promise.allSettled(
        stores.map((s, i) => s.set(`sid-${i}`, sessionData({ i }))),
      );
      assert.deepEqual(results.filter((r) => r.status === "rejected"), []);
      const [{ count }] = await sql.unsafe(
        `SELECT count(*)::int AS count FROM "${schema}"."session"`,
      );
      assert.equal(count, 10);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await Promise.all(connections.map((c) => c.end()));
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    }
  },
);

storeTest(
  "a failed table creation is retried on the next call",
  async ({ sql }) => {
    const role = uniqueName("limited");
    const schema = uniqueName("later");
    await sql.unsafe(`CREATE ROLE "${role}" LOGIN PASSWORD 'secret'`);
    const roleSql = connect({ max: 1, user: role, password: "secret" });
    const s = new PostgresStoreClass({
      postgres: roleSql,
      schemaName: schema,
      createTableIfMissing: true,
      pruneSessionInterval: false,
    });
    try {
      await assert.rejects(s.set("sid", sessionData()), /permission denied/);
      const [{ db }] = await sql`SELECT current_database() AS db`;
      await sql.unsafe(`GRANT CREATE ON DATABASE "${db}" TO "${role}"`);
      await s.set("sid", sessionData({ ok: true }));
      assert.equal((await s.get("sid") as unknown as { ok: boolean }).ok, true);
    } finally {
      await s.close();
      await roleSql.end();
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await sql.unsafe(`DROP OWNED BY "${role}"`);
      await sql.unsafe(`DROP ROLE "${role}"`);
    }
  },
);

test("table.sql is connect-pg-simple's table.sql: the same columns, key and index", () => {
  assert.match(TABLE_SQL, /CREATE TABLE "session" \(/);
  assert.match(TABLE_SQL, /"sid" varchar NOT NULL COLLATE "default"/);
  assert.match(TABLE_SQL, /"sess" json NOT NULL/);
  assert.match(TABLE_SQL, /"expire" timestamp\(6\) NOT NULL/);
  assert.match(TABLE_SQL, /WITH \(OIDS=FALSE\)/);
  assert.match(
    TABLE_SQL,
    /ADD CONSTRAINT "session_pkey" PRIMARY KEY \("sid"\)/,
  );
  assert.match(
    TABLE_SQL,
    /CREATE INDEX "IDX_session_expire" ON "session" \("expire"\)/,
  );
  // The file connect-pg-simple 10 ships, from its npm package (a dev import).
  const theirs = readFileSync(
    createRequire(import.meta.url).resolve("connect-pg-simple/table.sql"),
    "utf8",
  );
  assert.equal(TABLE_SQL, theirs);
});
