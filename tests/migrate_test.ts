/**
 * `connect-postgres-simple migrate`, and `create-table` with the same flags:
 * what each step does to a table, that it can run beside live apps (ours
 * and connect-pg-simple), twice at once, and again.
 *
 * @module
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import pg from "pg";
import {
  connect,
  DATABASE_URL,
  nowSeconds,
  type PostgresSql,
  PostgresStoreClass,
  sessionData,
  storeTest,
  TABLE_SQL,
  uniqueName,
} from "./_helpers.ts";
import { type ChildResult, runScript, sibling } from "./_spawn.ts";
import { pgCall, pgGet, PgStoreClass } from "./_compat.ts";

const CLI = sibling("../src/cli", import.meta.url);
const ALL = [
  "--user-key",
  "passport.user",
  "--created",
  "--timestamptz",
  "--notify",
];

function cli(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<ChildResult> {
  return runScript(CLI, args, { env, timeoutMs: 120_000 });
}

function ok(result: ChildResult): string {
  assert.equal(result.code, 0, result.stderr);
  return result.stdout;
}

/** A table's columns, indexes (with validity) and triggers, schema left out. */
async function shape(
  sql: PostgresSql,
  schema: string,
  table = "session",
): Promise<Record<string, string[]>> {
  const columns = await sql`
    SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
      || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
      || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') AS c
    FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = to_regclass(${`"${schema}"."${table}"`}) AND a.attnum > 0
      AND NOT a.attisdropped ORDER BY a.attnum`;
  const indexes = await sql`
    SELECT replace(pg_get_indexdef(i.indexrelid), ${`${schema}.`}, '')
      || CASE WHEN i.indisvalid THEN '' ELSE ' INVALID' END AS c
    FROM pg_index i WHERE i.indrelid = to_regclass(${`"${schema}"."${table}"`})
    ORDER BY 1`;
  const triggers = await sql`
    SELECT tgname || CASE WHEN tgenabled = 'D' THEN ' disabled' ELSE '' END AS c
    FROM pg_trigger WHERE tgrelid = to_regclass(${`"${schema}"."${table}"`})
      AND NOT tgisinternal ORDER BY 1`;
  return {
    columns: columns.map((r) => r.c),
    indexes: indexes.map((r) => r.c),
    triggers: triggers.map((r) => r.c),
  };
}

const MIGRATED = {
  columns: [
    "sid character varying not null",
    "sess json not null",
    "expire timestamp(6) with time zone not null",
    "created timestamp with time zone not null default now()",
  ],
  indexes: [
    'CREATE INDEX "IDX_session_created" ON session USING btree (created)',
    'CREATE INDEX "IDX_session_expire" ON session USING btree (expire)',
    `CREATE INDEX "IDX_session_user" ON session USING btree (((sess #>> '{passport,user}'::text[])))`,
    "CREATE UNIQUE INDEX session_pkey ON session USING btree (sid)",
  ],
  triggers: ["session_notify", "session_notify_truncate"],
};

storeTest(
  "--dry-run prints each step with its lock and SQL, and changes nothing",
  async ({ sql, schema }) => {
    const before = await shape(sql, schema);
    const out = ok(
      await cli(["migrate", "--schema-name", schema, ...ALL, "--dry-run"]),
    );
    assert.match(
      out,
      /-- --timestamptz: convert "expire" to timestamptz, reading its values in the time zone /,
    );
    assert.match(out, /-- lock: ACCESS EXCLUSIVE/);
    assert.match(
      out,
      /ALTER TABLE "[^"]+"\."session" ALTER COLUMN "expire" TYPE timestamptz\(6\);/,
    );
    assert.match(
      out,
      /ADD COLUMN IF NOT EXISTS "created" timestamptz NOT NULL DEFAULT now\(\);/,
    );
    assert.match(
      out,
      /CREATE INDEX CONCURRENTLY IF NOT EXISTS "IDX_session_created"/,
    );
    assert.match(
      out,
      /CREATE INDEX CONCURRENTLY IF NOT EXISTS "IDX_session_user" ON "[^"]+"\."session" \(\(sess #>> '\{"passport","user"\}'::text\[\]\)\);/,
    );
    assert.match(
      out,
      /-- lock: SHARE UPDATE EXCLUSIVE: reads and writes go on/,
    );
    assert.match(out, /-- --notify: install the notify triggers/);
    assert.match(out, /-- lock: SHARE ROW EXCLUSIVE, for an instant/);
    assert.match(
      out,
      /CREATE TRIGGER "session_notify_truncate" AFTER TRUNCATE ON "[^"]+"\."session"\n {2}FOR EACH STATEMENT/,
    );
    assert.deepEqual(await shape(sql, schema), before);
    const json = JSON.parse(
      ok(
        await cli([
          "migrate",
          "--schema-name",
          schema,
          "--created",
          "--dry-run",
          "--json",
        ]),
      ),
    );
    assert.deepEqual(json.steps.map((s: { flag: string }) => s.flag), [
      "--created",
      "--created",
    ]);
    assert.deepEqual(await shape(sql, schema), before);
  },
);

storeTest(
  "migrate brings table.sql's table to what the flags ask for, keeping its sessions; run again, it does nothing",
  async ({ sql, schema, table, insert, store }) => {
    await insert("kept", '{"passport":{"user":"ada"}}', nowSeconds() + 600);
    const out = ok(await cli(["migrate", "--schema-name", schema, ...ALL]));
    assert.match(out, /--timestamptz: done in [\d.]+ s/);
    assert.match(out, /--user-key: done in [\d.]+ s/);
    assert.deepEqual(await shape(sql, schema), MIGRATED);
    const again = JSON.parse(
      ok(await cli(["migrate", "--schema-name", schema, ...ALL, "--json"])),
    );
    assert.deepEqual(again, { schema, table: "session", steps: [] });
    assert.match(
      ok(await cli(["migrate", "--schema-name", schema, ...ALL])),
      /has everything asked for: nothing to do/,
    );
    const s = store({ userKey: "passport.user", maxLifetime: 3600 });
    assert.deepEqual((await s.sessionsOf("ada")).map((x) => x.id), ["kept"]);
    const [{ left }] = await sql.unsafe(
      `SELECT extract(epoch FROM expire)::float8 - $1::float8 AS left FROM ${table}`,
      [nowSeconds()],
    );
    assert.ok(left > 590 && left <= 601, `expire kept: ${left} s left`);
  },
);

storeTest(
  "create-table with the flags makes the table migrate makes of table.sql's; on an existing table it names what is missing",
  async ({ sql, schema }) => {
    const made = `${schema}_made`;
    try {
      const dry = ok(
        await cli(["create-table", "--schema-name", made, ...ALL, "--dry-run"]),
      );
      assert.match(
        dry,
        /"expire" timestamptz\(6\) NOT NULL,\n {2}"created" timestamptz NOT NULL DEFAULT now\(\),/,
      );
      const [{ exists }] =
        await sql`SELECT to_regnamespace(${made}) IS NOT NULL AS exists`;
      assert.equal(exists, false, "--dry-run created nothing");
      assert.match(
        ok(await cli(["create-table", "--schema-name", made, ...ALL])),
        /created table/,
      );
      assert.deepEqual(await shape(sql, made), MIGRATED);
      const json = JSON.parse(
        ok(
          await cli([
            "create-table",
            "--schema-name",
            schema,
            ...ALL,
            "--json",
          ]),
        ),
      );
      assert.deepEqual(json.missing, [
        "--timestamptz",
        "--created",
        "--notify",
        "--user-key",
      ]);
      assert.match(
        ok(await cli(["create-table", "--schema-name", schema, "--created"])),
        /already exists; it lacks what --created adds: run `connect-postgres-simple migrate` with it/,
      );
    } finally {
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${made}" CASCADE`);
    }
  },
);

test("usage: migrate needs a flag; table flags are for create-table and migrate; a bad --user-key", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["migrate"],
      /migrate needs at least one of --user-key, --created, --timestamptz, --notify/,
    ],
    [
      ["stats", "--created"],
      /--created is for create-table and migrate, not stats/,
    ],
    [
      ["prune", "--dry-run"],
      /--dry-run is for create-table and migrate, not prune/,
    ],
    [
      ["migrate", "--user-key", "a..b"],
      /--user-key must be a string of non-empty segments separated by dots/,
    ],
    [["migrate", "--user-key"], /--user-key/],
  ];
  const results = await Promise.all(cases.map(([args]) => cli(args)));
  for (const [i, result] of results.entries()) {
    assert.equal(result.code, 2, `${cases[i][0].join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, cases[i][1]);
  }
});

storeTest(
  "migrate of a missing table exits 1 and says to run create-table",
  async ({ schema }) => {
    const result = await cli(["migrate", "--schema-name", schema, "--created"]);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /does not exist \(run `connect-postgres-simple create-table` first\)/,
    );
  },
  { createTable: false },
);

storeTest(
  "an index of that name on another path: migrate exits 1 and says how to drop it",
  async ({ sql, schema, table }) => {
    await sql.unsafe(
      `CREATE INDEX "IDX_session_user" ON ${table} ((sess #>> '{other}'))`,
    );
    const result = await cli([
      "migrate",
      "--schema-name",
      schema,
      "--user-key",
      "passport.user",
    ]);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /not on the path passport\.user: drop it first \(DROP INDEX CONCURRENTLY "[^"]+"\."IDX_session_user"\)/,
    );
  },
);

storeTest(
  "an index left invalid by a failed build is dropped and built again",
  async ({ sql, schema, table, insert }) => {
    await insert("a", '{"passport":{"user":"ada"}}', nowSeconds() + 600);
    await insert("b", '{"passport":{"user":"ada"}}', nowSeconds() + 600);
    await assert.rejects(
      sql.unsafe(
        `CREATE UNIQUE INDEX CONCURRENTLY "IDX_session_user" ON ${table} (((sess #>> '{passport,user}'::text[])))`,
      ),
      { code: "23505" },
    );
    const dry = ok(
      await cli([
        "migrate",
        "--schema-name",
        schema,
        "--user-key",
        "passport.user",
        "--dry-run",
      ]),
    );
    assert.match(
      dry,
      /rebuild the index "IDX_session_user", left invalid by a build that failed/,
    );
    assert.match(
      dry,
      /DROP INDEX CONCURRENTLY IF EXISTS "[^"]+"\."IDX_session_user";\nCREATE INDEX CONCURRENTLY/,
    );
    ok(
      await cli([
        "migrate",
        "--schema-name",
        schema,
        "--user-key",
        "passport.user",
      ]),
    );
    const { indexes } = await shape(sql, schema);
    assert.ok(
      indexes.includes(
        `CREATE INDEX "IDX_session_user" ON session USING btree (((sess #>> '{passport,user}'::text[])))`,
      ),
      indexes.join("\n"),
    );
  },
);

storeTest(
  "a column already there (added by hand, or by another process a moment ago): --created builds only its index",
  async ({ sql, schema, table }) => {
    await sql.unsafe(
      `ALTER TABLE ${table} ADD COLUMN "created" timestamptz NOT NULL DEFAULT now()`,
    );
    const out = ok(
      await cli(["migrate", "--schema-name", schema, "--created"]),
    );
    assert.doesNotMatch(out, /add the column/);
    assert.match(out, /build the index "IDX_session_created"/);
    const { indexes } = await shape(sql, schema);
    assert.ok(
      indexes.includes(
        'CREATE INDEX "IDX_session_created" ON session USING btree (created)',
      ),
    );
  },
);

storeTest(
  "two migrates at once both succeed, and leave one valid index of each",
  async ({ sql, schema, fill }) => {
    await fill("s", 20_000, 3600);
    const args = [
      "migrate",
      "--schema-name",
      schema,
      "--created",
      "--user-key",
      "passport.user",
    ];
    const [a, b] = await Promise.all([cli(args), cli(args)]);
    ok(a);
    ok(b);
    const { indexes } = await shape(sql, schema);
    assert.equal(
      indexes.filter((i) => i.includes("INVALID")).length,
      0,
      indexes.join("\n"),
    );
    assert.equal(indexes.length, 4);
  },
);

storeTest(
  "migrate runs while our store and connect-pg-simple serve the table: not one call fails",
  async ({ sql, schema, table, fill }) => {
    await fill("s", 30_000, 3600);
    const ours = new PostgresStoreClass({
      postgres: sql,
      schemaName: schema,
      pruneSessionInterval: false,
    });
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
    const theirs = new PgStoreClass({
      pool: pool as never,
      schemaName: schema,
      pruneSessionInterval: false,
    });
    let running = true;
    const failures: unknown[] = [];
    let calls = 0;
    const load = async (i: number) => {
      while (running) {
        const sid = `load-${i}-${calls++ % 50}`;
        try {
          if (i % 2) {
            await ours.set(sid, sessionData({ passport: { user: `u${i}` } }));
            await ours.get(sid);
          } else {
            await pgCall((cb) =>
              theirs.set(sid, sessionData({ passport: { user: `u${i}` } }), cb)
            );
            await pgGet(theirs, sid);
          }
        } catch (error) {
          failures.push(error);
        }
      }
    };
    const loads = [0, 1, 2, 3].map(load);
    try {
      const out = ok(await cli(["migrate", "--schema-name", schema, ...ALL]));
      assert.match(out, /--user-key: done/);
    } finally {
      running = false;
      await Promise.all(loads);
      await ours.close();
      await theirs.close();
      await pool.end();
    }
    assert.deepEqual(failures, []);
    assert.ok(calls > 20, `${calls} calls ran during the migration`);
    const [{ n }] = await sql.unsafe(
      `SELECT count(*)::int AS n FROM ${table} WHERE sid LIKE 'load-%'`,
    );
    assert.ok(n > 0);
    const { indexes, triggers } = await shape(sql, schema);
    assert.deepEqual({ indexes, triggers }, {
      indexes: MIGRATED.indexes,
      triggers: MIGRATED.triggers,
    });
  },
);

storeTest(
  "a step that cannot get its lock within --timeout exits 1, having changed nothing",
  async ({ sql, schema, table }) => {
    const holder = await sql.reserve();
    try {
      await holder`BEGIN`;
      await holder.unsafe(`SELECT count(*) FROM ${table}`);
      const result = await cli([
        "migrate",
        "--schema-name",
        schema,
        "--created",
        "--timeout",
        "2",
      ]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(
        result.stderr,
        /is locked by another transaction: gave up after 2 s \(--timeout\); nothing was changed/,
      );
    } finally {
      await holder`ROLLBACK`;
      holder.release();
    }
    assert.equal((await shape(sql, schema)).columns.length, 3);
  },
);

storeTest(
  "--timestamptz reads the old values in the zone they were written in: every session keeps its instant",
  async ({ sql, schema }) => {
    const role = uniqueName("zoned");
    await sql.unsafe(`CREATE ROLE "${role}" LOGIN PASSWORD 'secret'`);
    await sql.unsafe(`ALTER ROLE "${role}" SET TimeZone = 'Pacific/Chatham'`);
    await sql.unsafe(`GRANT USAGE, CREATE ON SCHEMA "${schema}" TO "${role}"`);
    const url = new URL(DATABASE_URL);
    url.username = role;
    url.password = "secret";
    const roleSql = connect({ user: role, password: "secret", max: 2 });
    const pool = new pg.Pool({ connectionString: url.toString(), max: 2 });
    const theirs = new PgStoreClass({
      pool: pool as never,
      schemaName: schema,
      tableName: "zoned",
      pruneSessionInterval: false,
    });
    const ours = new PostgresStoreClass({
      postgres: roleSql,
      schemaName: schema,
      tableName: "zoned",
      pruneSessionInterval: false,
    });
    try {
      await roleSql.unsafe(
        TABLE_SQL.replaceAll('"session"', `"${schema}"."zoned"`).replaceAll(
          '"IDX_session_expire"',
          '"IDX_zoned_expire"',
        ).replaceAll('"session_pkey"', '"zoned_pkey"'),
      );
      const expires = new Date(Date.UTC(2031, 5, 1, 12, 0, 0)); // Chatham summer time differs from winter
      const winter = new Date(Date.UTC(2031, 0, 1, 12, 0, 0));
      await pgCall((cb) => theirs.set("pg", { cookie: { expires } }, cb));
      await ours.set("ours", { cookie: { expires: winter } } as never);
      const result = await cli(
        [
          "migrate",
          "--schema-name",
          schema,
          "--table-name",
          "zoned",
          "--timestamptz",
        ],
        { DATABASE_URL: url.toString() },
      );
      assert.match(ok(result), /--timestamptz: done/);
      const rows = await sql.unsafe(
        `SELECT sid, extract(epoch FROM expire)::float8 AS at FROM "${schema}"."zoned" ORDER BY sid`,
      );
      assert.deepEqual(rows.map((r) => [r.sid, r.at]), [
        ["ours", winter.valueOf() / 1000],
        ["pg", expires.valueOf() / 1000],
      ]);
      assert.notEqual(await pgGet(theirs, "ours"), null);
      assert.notEqual(await ours.get("pg"), null);
    } finally {
      await ours.close();
      await theirs.close();
      await pool.end();
      await roleSql.end();
      await sql.unsafe(`DROP OWNED BY "${role}"`);
      await sql.unsafe(`DROP ROLE "${role}"`);
    }
  },
);
