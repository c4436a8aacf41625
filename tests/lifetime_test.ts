/**
 * An absolute lifetime: `maxLifetime` and the `created` column. Sessions are
 * aged by writing `created` directly, never by waiting.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  nowSeconds,
  type PostgresSql,
  sessionData,
  storeTest,
} from "./_helpers.ts";
import { runScript, sibling } from "./_spawn.ts";

const HOUR = 3600;
const LIFETIME = { maxLifetime: HOUR } as const;

/** Adds `created` (and its index) as `migrate --created` does. */
async function addCreated(sql: PostgresSql, table: string): Promise<void> {
  await sql.unsafe(
    `ALTER TABLE ${table} ADD COLUMN "created" timestamptz NOT NULL DEFAULT now()`,
  );
  await sql.unsafe(`CREATE INDEX ON ${table} ("created")`);
}

/** A row created `age` seconds ago, expiring `expiresIn` seconds from now. */
async function insertAged(
  sql: PostgresSql,
  table: string,
  sid: string,
  sess: object,
  age: number,
  expiresIn = 86400,
): Promise<void> {
  await sql.unsafe(
    `INSERT INTO ${table} (sid, sess, expire, created)
     VALUES ($1, $2::text::json, to_timestamp($3::float8), now() - make_interval(secs => $4::float8))`,
    [sid, JSON.stringify(sess), nowSeconds() + expiresIn, age],
  );
}

async function created(
  sql: PostgresSql,
  table: string,
  sid: string,
): Promise<number> {
  const [row] = await sql.unsafe(
    `SELECT extract(epoch FROM created)::float8 AS created FROM ${table} WHERE sid = $1`,
    [sid],
  );
  return row.created;
}

storeTest(
  "get, touch, all, ids, length and sessionsOf leave out a session past maxLifetime, however active",
  async ({ sql, table, store, row }) => {
    await addCreated(sql, table);
    const old = { passport: { user: "ada" }, n: 1 };
    await insertAged(sql, table, "old", old, 2 * HOUR);
    await insertAged(sql, table, "young", { passport: { user: "ada" } }, 60);
    const s = store({ ...LIFETIME, userKey: "passport.user" });
    assert.equal(await s.get("old"), null);
    const before = await row("old");
    await s.touch("old", sessionData({}, 7200));
    assert.deepEqual(await row("old"), before, "touch changed nothing");
    assert.deepEqual(await s.ids(), ["young"]);
    assert.equal(await s.length(), 1);
    assert.deepEqual((await s.all()).map((x) => x.id), ["young"]);
    assert.deepEqual((await s.sessionsOf("ada")).map((x) => x.id), ["young"]);
    // Without maxLifetime the same row is an ordinary live session.
    assert.deepEqual(await store().get("old"), old);
  },
);

storeTest(
  "set never changes created, and never sets expire past created + maxLifetime",
  async ({ sql, table, store, row }) => {
    await addCreated(sql, table);
    const s = store(LIFETIME);
    await s.set("a", sessionData({ n: 1 }, 600));
    const first = await created(sql, table, "a");
    assert.ok(Math.abs(first - Date.now() / 1000) < 60, "created is now");
    assert.ok(
      Math.abs((await row("a"))!.expire - (nowSeconds() + 600)) <= 1,
      "a cookie within the lifetime keeps its expiry",
    );
    await s.set("a", sessionData({ n: 2 }, 7 * 86400));
    assert.equal(
      await created(sql, table, "a"),
      first,
      "an upsert keeps created",
    );
    const capped = (await row("a"))!.expire;
    assert.ok(
      Math.abs(capped - (first + HOUR)) < 0.001,
      `expire ${capped} is created + 1 h`,
    );
    await s.touch("a", sessionData({}, 30 * 86400));
    assert.ok(
      Math.abs((await row("a"))!.expire - (first + HOUR)) < 0.001,
      "touch is capped too",
    );
    // A session whose lifetime is over stays over when written again.
    await insertAged(sql, table, "late", {}, 2 * HOUR);
    await s.set("late", sessionData({ n: 3 }, 600));
    assert.equal(await s.get("late"), null);
  },
);

storeTest(
  "a new session id, which regenerate() makes, starts a new lifetime",
  async ({ sql, table, store }) => {
    await addCreated(sql, table);
    const s = store(LIFETIME);
    const data = { passport: { user: "ada" } };
    await insertAged(sql, table, "before-sign-in", data, 2 * HOUR);
    assert.equal(await s.get("before-sign-in"), null);
    await s.destroy("before-sign-in");
    await s.set("after-sign-in", sessionData(data));
    assert.equal(
      (await s.get("after-sign-in") as unknown as typeof data).passport.user,
      "ada",
    );
  },
);

storeTest(
  "prune deletes sessions past their lifetime, however far their expire, through the created index",
  async ({ sql, table, store, row }) => {
    await addCreated(sql, table);
    await insertAged(sql, table, "over", {}, 2 * HOUR, 30 * 86400);
    await insertAged(sql, table, "young", {}, 60, 30 * 86400);
    await insertAged(sql, table, "expired", {}, 60, -60);
    await sql.unsafe(
      `INSERT INTO ${table} (sid, sess, expire, created)
       SELECT 'old-' || i, '{}', now() + interval '1 day', now() - interval '3 hours'
       FROM generate_series(1, 2500) i`,
    );
    assert.equal(await store(LIFETIME).pruneSessions(), 2502);
    assert.equal(await row("over"), undefined);
    assert.equal(await row("expired"), undefined);
    assert.ok(await row("young"));
    // Without maxLifetime, only what has expired.
    await insertAged(sql, table, "over-again", {}, 2 * HOUR, 30 * 86400);
    assert.equal(await store().pruneSessions(), 0);
  },
);

storeTest(
  "an app whose clock runs two hours fast prunes by lifetime only what the database's clock has aged out",
  async ({ sql, table, schema, row }) => {
    await addCreated(sql, table);
    await insertAged(sql, table, "half-hour", {}, HOUR / 2);
    await insertAged(sql, table, "two-hours", {}, 2 * HOUR);
    const result = await runScript(
      sibling("./_clock_child", import.meta.url),
      ["prune", schema, String(2 * HOUR * 1000), String(HOUR)],
      { timeoutMs: 60_000 },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout.trim().split("\n").at(-1)!), {
      deleted: 1,
    });
    assert.ok(await row("half-hour"), "still young by the database's clock");
    assert.equal(await row("two-hours"), undefined);
  },
);

storeTest(
  "maxLifetime on a table without created fails each call with an error naming the command that adds it",
  async ({ sql, table, schema, store }) => {
    const s = store({ ...LIFETIME, tableName: "session" });
    for (
      const call of [
        () => s.get("a"),
        () => s.set("a", sessionData()),
        () => s.length(),
      ]
    ) {
      await assert.rejects(call(), (error: unknown) => {
        assert.match(
          (error as Error).message,
          new RegExp(
            `maxLifetime needs a "created" column, which "${schema}"\\."session" lacks: run \`npx connect-postgres-simple migrate --created --schema-name ${schema}\``,
          ),
        );
        assert.equal(
          (error as { cause?: { code?: string } }).cause?.code,
          "42703",
        );
        return true;
      });
    }
    await assert.rejects(
      s.pruneSessions(),
      /maxLifetime needs a "created" column/,
    );
    await addCreated(sql, table);
    await s.set("a", sessionData({ ok: true }));
    assert.equal((await s.get("a") as unknown as { ok: boolean }).ok, true);
  },
);

storeTest(
  "createTableIfMissing adds created and its index to an existing table; its sessions start their lifetime then",
  async ({ sql, table, schema, store, insert }) => {
    await insert("existing", '{"n":1}', nowSeconds() + 86400);
    const s = store({ ...LIFETIME, createTableIfMissing: true });
    assert.deepEqual(await s.get("existing"), { n: 1 });
    const at = await created(sql, table, "existing");
    assert.ok(
      Math.abs(at - Date.now() / 1000) < 60,
      "created is the migration's time",
    );
    await s.close();
    const [index] = await sql`SELECT i.indisvalid FROM pg_index i
      WHERE i.indexrelid = to_regclass(${`"${schema}"."IDX_session_created"`})`;
    assert.equal(index?.indisvalid, true);
  },
);

storeTest(
  "createTableIfMissing makes a new table with created and its index",
  async ({ sql, schema, store }) => {
    const s = store({
      ...LIFETIME,
      tableName: "fresh",
      createTableIfMissing: true,
    });
    await s.set("a", sessionData({ n: 1 }));
    assert.deepEqual((await s.get("a") as unknown as { n: number }).n, 1);
    const columns =
      await sql`SELECT attname, format_type(atttypid, atttypmod) AS type
      FROM pg_attribute WHERE attrelid = to_regclass(${`"${schema}"."fresh"`})
      AND attnum > 0 AND NOT attisdropped ORDER BY attnum`;
    assert.deepEqual(columns.map((c) => `${c.attname} ${c.type}`), [
      "sid character varying",
      "sess json",
      "expire timestamp(6) without time zone",
      "created timestamp with time zone",
    ]);
    const indexes = await sql`SELECT indexname FROM pg_indexes
      WHERE schemaname = ${schema} AND tablename = 'fresh' ORDER BY 1`;
    assert.deepEqual(indexes.map((i) => i.indexname), [
      "IDX_fresh_created",
      "IDX_fresh_expire",
      "fresh_pkey",
    ]);
  },
  { createTable: false },
);
