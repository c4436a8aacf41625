/**
 * connect-pg-simple 10 and this store side by side (the table: each store's
 * createTableIfMissing makes a table the other serves, and where they differ).
 * Helpers: `_compat.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { sessionData } from "./_helpers.ts";
import {
  compatTest,
  pgCall,
  pgGet,
  roundTrip,
  sids,
  type Sql,
} from "./_compat.ts";

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
