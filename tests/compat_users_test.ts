/**
 * connect-pg-simple 10 and this store side by side (sessions of one user,
 * the absolute lifetime, and a `timestamptz` expire that no TimeZone can
 * break). Helpers: `_compat.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import pg from "pg";
import {
  connect,
  DATABASE_URL,
  nowSeconds,
  type PostgresSql,
  sessionData,
  uniqueName,
} from "./_helpers.ts";
import {
  compatTest,
  pgCall,
  pgGet,
  type PgPool,
  type PgStore,
  PgStoreClass,
  stored,
} from "./_compat.ts";

/** Adds `created` (and its index) as `migrate --created` does. */
async function addCreated(sql: PostgresSql, table: string): Promise<void> {
  await sql.unsafe(
    `ALTER TABLE ${table} ADD COLUMN "created" timestamptz NOT NULL DEFAULT now()`,
  );
  await sql.unsafe(`CREATE INDEX ON ${table} ("created")`);
}

async function createdOf(
  sql: PostgresSql,
  table: string,
  sid: string,
): Promise<string> {
  const [row] = await sql.unsafe(
    `SELECT created::text AS created FROM ${table} WHERE sid = $1`,
    [sid],
  );
  return row.created;
}

compatTest(
  "sessions connect-pg-simple writes are sessions of their user: listed by sessionsOf, deleted by destroyOf",
  async ({ store, pgStore }) => {
    const ours = store({ userKey: "passport.user" });
    const theirs = pgStore();
    const signedIn = (user: unknown) =>
      sessionData({ passport: { user } }, 3600);
    await pgCall((cb) => theirs.set("pg-1", signedIn("ada"), cb));
    await pgCall((cb) => theirs.set("pg-2", signedIn("ada"), cb));
    await pgCall((cb) => theirs.set("pg-bob", signedIn("bob"), cb));
    await ours.set("ours-1", signedIn("ada"));
    assert.deepEqual(
      (await ours.sessionsOf("ada")).map((s) => s.id).sort(),
      ["ours-1", "pg-1", "pg-2"],
    );
    assert.equal(await ours.destroyOf("ada", { except: "pg-1" }), 2);
    assert.equal(await pgGet(theirs, "pg-2"), null);
    assert.notEqual(await pgGet(theirs, "pg-1"), null);
    assert.notEqual(await pgGet(theirs, "pg-bob"), null);
  },
);

compatTest(
  "connect-pg-simple's inserts fill created by its default; its upserts and touches never change it",
  async ({ sql, table, store, pgStore }) => {
    await addCreated(sql, table);
    const theirs = pgStore();
    await pgCall((cb) => theirs.set("pg", sessionData({ n: 1 }), cb));
    const first = await createdOf(sql, table, "pg");
    const [{ age }] = await sql.unsafe(
      `SELECT extract(epoch FROM now() - created)::float8 AS age FROM ${table} WHERE sid = 'pg'`,
    );
    assert.ok(Math.abs(age) < 60, `created ${first} is the insert's time`);
    await pgCall((cb) => theirs.set("pg", sessionData({ n: 2 }, 7200), cb));
    await pgCall((cb) => theirs.touch("pg", sessionData({}, 9000), cb));
    assert.equal(await createdOf(sql, table, "pg"), first);
    // And ours, on the same rows, keeps it too.
    await store({ maxLifetime: 3600 }).set("pg", sessionData({ n: 3 }));
    assert.equal(await createdOf(sql, table, "pg"), first);
  },
);

compatTest(
  "past maxLifetime: our capped expiry ends the session for connect-pg-simple too, and one it keeps touching stays over for ours until prune deletes it",
  async ({ sql, table, store, pgStore, row }) => {
    await addCreated(sql, table);
    const ours = store({ maxLifetime: 3600 });
    const theirs = pgStore();
    await pgCall((cb) => theirs.set("ours-late", sessionData({}), cb));
    await pgCall((cb) => theirs.set("pg-late", sessionData({}), cb));
    await sql.unsafe(
      `UPDATE ${table} SET created = now() - interval '2 hours'`,
    );
    // Our write caps expire at created + 1 h, already past.
    await ours.set("ours-late", sessionData({ n: 1 }, 86400));
    assert.equal(await pgGet(theirs, "ours-late"), null);
    // connect-pg-simple does not know the lifetime: its touch moves expire on.
    await pgCall((cb) => theirs.touch("pg-late", sessionData({}, 86400), cb));
    assert.notEqual(await pgGet(theirs, "pg-late"), null);
    assert.equal(await ours.get("pg-late"), null);
    assert.equal(await ours.pruneSessions(), 2);
    assert.equal(await row("pg-late"), undefined);
  },
);

/** Two login roles whose connections default to two different TimeZones. */
async function zonedRoles(
  sql: PostgresSql,
  schema: string,
  zones: string[],
): Promise<{ urls: string[]; drop(): Promise<void> }> {
  const roles = zones.map(() => uniqueName("tz"));
  for (const [i, role] of roles.entries()) {
    await sql.unsafe(`CREATE ROLE "${role}" LOGIN PASSWORD 'secret'`);
    await sql.unsafe(`ALTER ROLE "${role}" SET TimeZone = '${zones[i]}'`);
    await sql.unsafe(`GRANT USAGE ON SCHEMA "${schema}" TO "${role}"`);
    await sql.unsafe(
      `GRANT ALL ON ALL TABLES IN SCHEMA "${schema}" TO "${role}"`,
    );
  }
  return {
    urls: roles.map((role) => {
      const url = new URL(DATABASE_URL);
      url.username = role;
      url.password = "secret";
      return url.toString();
    }),
    async drop() {
      for (const role of roles) {
        await sql.unsafe(`DROP OWNED BY "${role}"`);
        await sql.unsafe(`DROP ROLE "${role}"`);
      }
    },
  };
}

/**
 * A pair on one table whose connections use `zones[0]` (ours) and
 * `zones[1]` (connect-pg-simple), each from its role's default.
 */
async function pairInZones(
  sql: PostgresSql,
  schema: string,
  zones: string[],
  run: (ours: ReturnType<typeof connect>, theirs: PgStore) => Promise<void>,
): Promise<void> {
  const roles = await zonedRoles(sql, schema, zones);
  const ourSql = connect({
    user: new URL(roles.urls[0]).username,
    password: "secret",
  });
  const pool = new pg.Pool({ connectionString: roles.urls[1], max: 2 }) as
    & PgPool
    & {
      query(text: string): Promise<{ rows: { TimeZone: string }[] }>;
    };
  const theirs = new PgStoreClass({
    pool,
    schemaName: schema,
    pruneSessionInterval: false,
  });
  try {
    const [{ TimeZone: ourZone }] = await ourSql`SHOW TimeZone`;
    const { rows: [{ TimeZone: theirZone }] } = await pool.query(
      "SHOW TimeZone",
    );
    assert.deepEqual(
      [ourZone, theirZone],
      zones,
      "the two connections use different zones",
    );
    await run(ourSql, theirs);
  } finally {
    await theirs.close();
    await pool.end();
    await ourSql.end();
    await roles.drop();
  }
}

const ZONES = ["Pacific/Chatham", "America/New_York"]; // +12:45/+13:45 and -5/-4

compatTest(
  "with a timestamptz expire, ours and connect-pg-simple agree on expiry though their connections use different TimeZones",
  async ({ sql, schema, table, store }) => {
    await sql.unsafe(
      `ALTER TABLE ${table} ALTER COLUMN expire TYPE timestamptz(6)`,
    );
    await pairInZones(sql, schema, ZONES, async (ourSql, theirs) => {
      const ours = store({ postgres: ourSql });
      const soon = sessionData({ by: "pg" }, 30);
      const gone = sessionData({ by: "pg" }, -30);
      await pgCall((cb) => theirs.set("pg-soon", soon, cb));
      await pgCall((cb) => theirs.set("pg-gone", gone, cb));
      await ours.set("ours-soon", sessionData({ by: "ours" }, 30));
      await ours.set("ours-gone", sessionData({ by: "ours" }, -30));
      assert.deepEqual(await ours.get("pg-soon"), stored(soon));
      assert.equal(await ours.get("pg-gone"), null);
      assert.notEqual(await pgGet(theirs, "ours-soon"), null);
      assert.equal(await pgGet(theirs, "ours-gone"), null);
      // Both wrote the same instant for the same cookie expiry.
      const expires = new Date(Date.UTC(2031, 0, 1, 12, 0, 0));
      await pgCall((cb) => theirs.set("pg-fixed", { cookie: { expires } }, cb));
      await ours.set("ours-fixed", { cookie: { expires } } as never);
      const rows = await sql.unsafe(
        `SELECT sid, extract(epoch FROM expire)::float8 AS at FROM ${table}
         WHERE sid LIKE '%-fixed' ORDER BY sid`,
      );
      assert.deepEqual(rows.map((r) => r.at), [
        expires.valueOf() / 1000,
        expires.valueOf() / 1000,
      ]);
      // A touch by one moves the expiry the other reads.
      await pgCall((cb) =>
        theirs.touch("ours-soon", sessionData({}, 7200), cb)
      );
      const [{ left }] = await sql.unsafe(
        `SELECT extract(epoch FROM expire)::float8 - $1::float8 AS left FROM ${table} WHERE sid = 'ours-soon'`,
        [nowSeconds()],
      );
      assert.ok(
        left > 7000 && left <= 7201,
        `ours-soon now expires in ${left} s`,
      );
      // Pruning by either deletes exactly the expired ones.
      assert.equal(await ours.pruneSessions(), 2);
      assert.notEqual(await pgGet(theirs, "pg-soon"), null);
    });
  },
);

compatTest(
  "control: with connect-pg-simple's timestamp(6) expire, the same two TimeZones disagree",
  async ({ sql, schema, store }) => {
    await pairInZones(sql, schema, ZONES, async (ourSql, theirs) => {
      const ours = store({ postgres: ourSql });
      await pgCall((cb) => theirs.set("pg-soon", sessionData({}, 30), cb));
      await ours.set("ours-soon", sessionData({}, 30));
      // New York's wall clock read as Chatham's is about 18 hours earlier.
      assert.equal(await ours.get("pg-soon"), null);
      assert.notEqual(await pgGet(theirs, "ours-soon"), null);
    });
  },
);
