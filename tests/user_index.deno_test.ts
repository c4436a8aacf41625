/**
 * The SQL of sessions of one user, below the store: how a `userKey` becomes
 * a quoted literal, and that the index `IDX_<table>_user` serves the very
 * statements the store prepares (custom plans, and from PostgreSQL 12 the
 * generic plans a prepared statement switches to), for hostile paths too.
 * Deno-only: it reads `src/` (the npm suite reaches the store only through
 * the package).
 *
 * @module
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  nowSeconds,
  type PostgresSql,
  sessionData,
  storeTest,
  uniqueName,
} from "./_helpers.ts";
import { HOSTILE_KEYS, nested } from "./_user_keys.ts";
import { statements } from "../src/queries.ts";
import { resolveTableNames } from "../src/names.ts";
import { arrayLiteral, ownerExpression } from "../src/user_key.ts";

/** The plan of `text` run with `params`, as one string; `generic` forces a generic plan. */
async function plan(
  sql: PostgresSql,
  text: string,
  params: (string | number | null)[],
  generic = false,
): Promise<string> {
  return await sql.begin(async (tx) => {
    if (generic) {
      await tx.unsafe("SET LOCAL plan_cache_mode = force_generic_plan");
    }
    const name = uniqueName("p");
    await tx.unsafe(`PREPARE ${name} AS ${text}`);
    const literals = params.map((p) =>
      p === null ? "NULL" : `'${String(p).replaceAll("'", "''")}'`
    );
    const rows = await tx.unsafe(
      `EXPLAIN EXECUTE ${name}(${literals.join(", ")})`,
    );
    await tx.unsafe(`DEALLOCATE ${name}`);
    return rows.map((row) => row["QUERY PLAN"]).join("\n");
  });
}

/** Custom plans, and generic ones where PostgreSQL can be asked for them (12+). */
async function planModes(sql: PostgresSql): Promise<boolean[]> {
  const [{ v }] =
    await sql`SELECT current_setting('server_version_num')::int AS v`;
  return v >= 120000 ? [false, true] : [false];
}

const USES_INDEX = (index: string) =>
  new RegExp(`(Index Scan using|Bitmap Index Scan on) "${index}"`);

test("the owner expression quotes every segment: an array literal, then a SQL literal", () => {
  assert.equal(
    ownerExpression(["passport", "user"]),
    `(sess #>> '{"passport","user"}'::text[])`,
  );
  assert.equal(
    arrayLiteral(['a"b', "c\\d", "}{,"]),
    '{"a\\"b","c\\\\d","}{,"}',
  );
  // A backslash makes it an E'' literal, read the same whatever
  // standard_conforming_strings says; a quote is doubled.
  assert.equal(
    ownerExpression(["it's", "a\\b"]),
    `(sess #>> E'{"it''s","a\\\\\\\\b"}'::text[])`,
  );
});

storeTest(
  "sessionsOf and destroyOf, as the store prepares them, use IDX_<table>_user on 5,000 sessions",
  async ({ sql, schema, store }) => {
    const s = store({
      userKey: "passport.user",
      tableName: "users",
      createTableIfMissing: true,
    });
    await s.set("first", sessionData({ passport: { user: "u0" } }));
    const t = `"${schema}"."users"`;
    await sql.unsafe(
      `INSERT INTO ${t} (sid, sess, expire)
       SELECT 's' || i, json_build_object('passport', json_build_object('user', 'u' || (i % 500))),
         now() + interval '1 hour' FROM generate_series(1, 5000) i`,
    );
    await sql.unsafe(`ANALYZE ${t}`);
    const text = statements(resolveTableNames(schema, "users", () => {}), {
      userKey: ["passport", "user"],
    });
    for (const generic of await planModes(sql)) {
      const reads = await plan(
        sql,
        text.sessionsOf,
        ["u1", nowSeconds()],
        generic,
      );
      assert.match(reads, USES_INDEX("IDX_users_user"), reads);
      const deletes = await plan(
        sql,
        text.destroyOf,
        ["u1", null, nowSeconds() + 60],
        generic,
      );
      assert.match(deletes, USES_INDEX("IDX_users_user"), deletes);
    }
    assert.equal((await s.sessionsOf("u1")).length, 10);
    assert.equal(await s.destroyOf("u1"), 10);
  },
  { createTable: false },
);

storeTest(
  "on a jsonb sess column, the index serves sessionsOf too",
  async ({ sql, schema, table, store }) => {
    await sql.unsafe(`ALTER TABLE ${table} ALTER COLUMN sess TYPE jsonb`);
    await sql.unsafe(
      `INSERT INTO ${table} (sid, sess, expire)
       SELECT 's' || i, jsonb_build_object('passport', jsonb_build_object('user', 'u' || (i % 500))),
         now() + interval '1 hour' FROM generate_series(1, 5000) i`,
    );
    const s = store({ userKey: "passport.user", createTableIfMissing: true });
    assert.equal((await s.sessionsOf("u7")).length, 10);
    await s.close();
    await sql.unsafe(`ANALYZE ${table}`);
    const text = statements(resolveTableNames(schema, "session", () => {}), {
      userKey: ["passport", "user"],
    });
    const reads = await plan(sql, text.sessionsOf, ["u7", nowSeconds()]);
    assert.match(reads, USES_INDEX("IDX_session_user"), reads);
  },
);

for (const key of HOSTILE_KEYS) {
  storeTest(
    `the index made for a hostile userKey ${
      JSON.stringify(key)
    } serves the store's statements`,
    async ({ sql, schema, store }) => {
      const segments = key.split(".");
      const s = store({
        userKey: key,
        tableName: "hostile",
        createTableIfMissing: true,
      });
      await s.set("exact", sessionData(nested(segments, "u")));
      await s.close();
      const t = `"${schema}"."hostile"`;
      await sql.unsafe(
        `INSERT INTO ${t} (sid, sess, expire)
         SELECT 'f' || i, replace($1::text, '"OWNER"', '"m' || (i % 500) || '"')::json,
           now() + interval '1 hour'
         FROM generate_series(1, 5000) i`,
        [JSON.stringify(nested(segments, "OWNER"))],
      );
      await sql.unsafe(`ANALYZE ${t}`);
      const text = statements(resolveTableNames(schema, "hostile", () => {}), {
        userKey: segments,
      });
      for (const generic of await planModes(sql)) {
        const reads = await plan(
          sql,
          text.sessionsOf,
          ["u", nowSeconds()],
          generic,
        );
        assert.match(reads, USES_INDEX("IDX_hostile_user"), reads);
      }
    },
    { createTable: false },
  );
}
