/**
 * connect-pg-simple 10 and this store side by side (names: schema and table
 * names, odd, legacy and dotted, address the same table in both). Helpers:
 * `_compat.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { BEHIND_PGBOUNCER } from "./_helpers.ts";
import {
  captureWarnings,
  compatTest,
  DEPRECATION,
  type OurStore,
  type PgStore,
  roundTrip,
  sids,
} from "./_compat.ts";

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
