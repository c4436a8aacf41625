/**
 * End to end over HTTP: Hono with hono-sessions and `HonoSessionStore`, as
 * a browser would use them (the cookie carried by hand), served as each
 * runtime serves Hono (`Deno.serve`, `Bun.serve`, @hono/node-server).
 *
 * hono-sessions calls `getSessionById` with the cookie's id, `createSession`
 * for every request without a usable session (before the handler runs),
 * then `persistSessionData` whenever the session changed, which with
 * `autoExtendExpiration` (its default) is every request, and
 * `deleteSession` on logout, on rotation and for a session whose own
 * `_expire` has passed.
 *
 * Runs under Deno (`deno task test`) and, compiled, under Node and Bun
 * against the installed npm package (`deno task test:npm`, `test:bun`).
 */
import assert from "node:assert/strict";
import express from "express";
import { storeTest, type TestBed, uniqueName } from "./_helpers.ts";
import { startCounterApp, type Visit, visit as request } from "./_http.ts";
import { type HonoAppOptions, RUNTIME, startHonoApp } from "./_hono.ts";
import { type ChildResult, runScript, sibling } from "./_spawn.ts";
import { HonoSessionStore, type HonoSessionStoreOptions } from "../hono.ts";

interface App {
  /** `GET path` with the cookie, answered 200. */
  get: (path: string, cookie?: string) => Promise<Visit>;
  logout: (cookie: string) => Promise<Visit>;
}

/** What a test reads of a row: the stored hono-sessions session and the expiry. */
interface HonoRow {
  sess: {
    _id?: string;
    _data: Record<string, { value: unknown; flash: boolean }>;
    _expire: string | null;
  };
  expire: number;
}

function honoStore(
  bed: TestBed,
  options: HonoSessionStoreOptions = {},
): HonoSessionStore {
  return new HonoSessionStore({
    postgres: bed.sql,
    schemaName: bed.schema,
    pruneSessionInterval: false,
    ...options,
  });
}

function honoTest(
  name: string,
  fn: (
    app: App,
    bed: TestBed & { honoRow(sid: string): Promise<HonoRow | undefined> },
  ) => Promise<void>,
  { app: appOptions = {}, store: storeOptions = {} }: {
    app?: HonoAppOptions;
    store?: HonoSessionStoreOptions;
  } = {},
): void {
  storeTest(`Hono on ${RUNTIME}: ${name}`, async (bed) => {
    const store = honoStore(bed, storeOptions);
    const app = await startHonoApp(store, appOptions);
    try {
      await fn({
        async get(path, cookie) {
          const answer = await request(app.url, path, cookie);
          assert.equal(answer.status, 200, `${path}: ${answer.status}`);
          return answer;
        },
        logout: (cookie) => request(app.url, "/logout", cookie),
      }, {
        ...bed,
        async honoRow(sid) {
          const row = await bed.row(sid);
          return row && { sess: JSON.parse(row.sess), expire: row.expire };
        },
      });
    } finally {
      await app.close();
      await store.close();
    }
  });
}

/** The expiry `seconds` from a moment between `before` and `after` (ms) gets, in seconds. */
function expiryBetween(
  before: number,
  after: number,
  seconds = 60,
): [number, number] {
  return [
    Math.ceil(before / 1000) + seconds,
    Math.ceil(after / 1000) + seconds,
  ];
}

function assertWithin(value: number | undefined, [low, high]: number[]): void {
  assert.ok(
    value !== undefined && value >= low && value <= high,
    `expire ${value} in [${low}, ${high}]`,
  );
}

/** Moves a row's expiry by `seconds` (negative: earlier), leaving its session as it is. */
function shiftExpiry(
  bed: TestBed,
  sid: string,
  seconds: number,
): Promise<unknown> {
  return bed.sql.unsafe(
    `UPDATE ${bed.table} SET expire = expire + make_interval(secs => $2) WHERE sid = $1`,
    [sid, seconds],
  );
}

honoTest(
  "the first response sets a cookie, and requests with it share the session",
  async ({ get }, { honoRow }) => {
    const before = Date.now();
    const first = await get("/count");
    const after = Date.now();
    assert.equal(first.count, 1);
    assert.equal(
      first.setCookie,
      `session=${first.id}`,
      "the cookie is the id",
    );
    const stored = await honoRow(first.id);
    assert.ok(stored, "a row under the session id");
    assert.deepEqual(stored.sess._data, {
      count: { value: 1, flash: false },
    });
    assert.equal(
      "_id" in stored.sess,
      false,
      "the id is the row's, not stored twice",
    );
    assertWithin(stored.expire, expiryBetween(before, after));
    assert.equal(
      stored.expire,
      Math.ceil(Date.parse(stored.sess._expire!) / 1000),
      "expire is the session's own expiry, rounded up to the second",
    );

    const second = await get("/count", first.setCookie);
    const third = await get("/count", first.setCookie);
    assert.deepEqual(
      [second.count, second.id, third.count, third.id],
      [2, first.id, 3, first.id],
    );
    assert.equal((await honoRow(first.id))?.sess._data.count.value, 3);

    const stranger = await get("/count");
    assert.equal(stranger.count, 1, "no cookie, a session of its own");
    assert.notEqual(stranger.id, first.id);
  },
);

honoTest(
  "a request that only reads the session moves its expiry (autoExtendExpiration, the default)",
  async ({ get }, bed) => {
    const first = await get("/count");
    await shiftExpiry(bed, first.id, -30);
    const aged = await bed.honoRow(first.id);

    const before = Date.now();
    const peek = await get("/peek", first.setCookie);
    const after = Date.now();
    assert.deepEqual([peek.count, peek.id], [1, first.id]);
    const read = await bed.honoRow(first.id);
    assertWithin(read?.expire, expiryBetween(before, after));
    assert.ok(read && aged && read.expire > aged.expire, "moved");
    assert.equal(read?.sess._data.count.value, 1);
  },
);

honoTest(
  "autoExtendExpiration: false: a read writes nothing, a change moves the expiry",
  async ({ get }, bed) => {
    const first = await get("/count");
    await shiftExpiry(bed, first.id, -30);
    const aged = await bed.row(first.id);

    assert.equal((await get("/peek", first.setCookie)).count, 1);
    assert.deepEqual(await bed.row(first.id), aged, "the read wrote nothing");

    const before = Date.now();
    assert.equal((await get("/count", first.setCookie)).count, 2);
    const after = Date.now();
    assertWithin(
      (await bed.row(first.id))?.expire,
      expiryBetween(before, after),
    );
  },
  { app: { autoExtendExpiration: false } },
);

honoTest(
  "without expireAfterSeconds, a session's row lives ttl seconds from each save",
  async ({ get }, { honoRow }) => {
    const before = Date.now();
    const first = await get("/count");
    const after = Date.now();
    const stored = await honoRow(first.id);
    assert.equal(stored?.sess._expire, null, "hono-sessions set no expiry");
    assertWithin(stored?.expire, expiryBetween(before, after, 3600));
    assert.equal((await get("/count", first.setCookie)).count, 2);
  },
  { app: { expireAfterSeconds: null }, store: { ttl: 3600 } },
);

honoTest(
  "logout deletes the row, and its cookie then gets a new session",
  async ({ get, logout }, { row }) => {
    const first = await get("/count");
    assert.equal((await get("/count", first.setCookie)).count, 2);
    assert.equal((await logout(first.setCookie!)).status, 200);
    assert.equal(await row(first.id), undefined, "the row is deleted");

    const after = await get("/count", first.setCookie);
    assert.equal(after.count, 1);
    assert.notEqual(after.id, first.id);
    assert.equal(after.setCookie, `session=${after.id}`, "a fresh cookie");
  },
);

honoTest(
  "an expired row is not revived, whatever the session inside it says",
  async ({ get }, bed) => {
    const first = await get("/count");
    assert.equal((await get("/count", first.setCookie)).count, 2);
    await shiftExpiry(bed, first.id, -2 * 86400);
    const expired = await bed.row(first.id);

    const after = await get("/count", first.setCookie);
    assert.equal(after.count, 1, "the old count is gone");
    assert.notEqual(after.id, first.id);
    assert.equal(after.setCookie, `session=${after.id}`, "a fresh cookie");
    assert.deepEqual(
      await bed.row(first.id),
      expired,
      "the expired row is neither touched nor rewritten",
    );
    assert.equal(await bed.store().pruneSessions(), 1, "pruning deletes it");
    assert.equal(await bed.row(first.id), undefined);
  },
);

honoTest(
  "a session whose own expiry passed is deleted, though its row had not expired",
  async ({ get }, bed) => {
    const first = await get("/count");
    await bed.sql.unsafe(
      `UPDATE ${bed.table} SET sess = jsonb_set(sess::jsonb, '{_expire}', to_jsonb($2::text))::json WHERE sid = $1`,
      [first.id, new Date(Date.now() - 1000).toISOString()],
    );
    const after = await get("/count", first.setCookie);
    assert.equal(after.count, 1);
    assert.notEqual(after.id, first.id);
    assert.equal(
      await bed.row(first.id),
      undefined,
      "hono-sessions deleted it",
    );
  },
);

honoTest(
  "rotating the session id moves the session to a new row and deletes the old one",
  async ({ get }, { row, honoRow }) => {
    const first = await get("/count");
    assert.equal((await get("/count", first.setCookie)).count, 2);

    const rotated = await get("/rotate", first.setCookie);
    assert.ok(rotated.setCookie && rotated.setCookie !== first.setCookie);
    const id = rotated.setCookie.slice("session=".length);
    assert.equal(await row(first.id), undefined, "the old row is deleted");
    const moved = await honoRow(id);
    assert.equal(moved?.sess._data.count.value, 2);
    assert.equal("_id" in (moved?.sess ?? {}), false, "no stale id inside");

    const next = await get("/count", rotated.setCookie);
    assert.deepEqual([next.count, next.id], [3, id]);
  },
);

storeTest(
  "HonoSessionStore: its calls, as hono-sessions makes them",
  async (bed) => {
    const store = honoStore(bed, { ttl: 120 });
    try {
      const data = {
        _data: { user: { value: "ada", flash: false } },
        _expire: null,
        _delete: false,
        _accessed: null,
      };
      const before = Date.now();
      await store.createSession("sid-1", { ...data, _id: "sid-1" });
      const after = Date.now();
      assert.deepEqual(await store.getSessionById("sid-1"), data);
      assertWithin(
        (await bed.row("sid-1"))?.expire,
        expiryBetween(before, after, 120),
      );

      const expire = new Date(Date.now() + 3_600_500);
      await store.persistSessionData("sid-1", {
        ...data,
        _expire: expire.toISOString(),
      });
      assert.equal(
        (await bed.row("sid-1"))?.expire,
        Math.ceil(expire.valueOf() / 1000),
      );

      assert.equal(await store.getSessionById("missing"), null);
      assert.equal(await store.getSessionById(), null, "no id, no session");
      await assert.rejects(
        store.persistSessionData("sid-1", { ...data, _expire: "soon" }),
        /_expire is not a valid date: soon/,
      );
      await store.deleteSession("sid-1");
      await store.deleteSession("sid-1");
      assert.equal(await bed.row("sid-1"), undefined);
    } finally {
      await store.close();
    }
    await assert.rejects(store.getSessionById("sid-1"), /the store is closed/);
  },
);

storeTest(
  "HonoSessionStore: options are checked as the Express store checks them; disableTouch and touchAfter are refused",
  async (bed) => {
    for (const option of ["disableTouch", "touchAfter"]) {
      assert.throws(
        () =>
          new HonoSessionStore({
            [option]: option === "touchAfter" ? 60 : true,
          }),
        {
          name: "TypeError",
          message: new RegExp(
            `\`${option}\` does not apply to hono-sessions.*never touches`,
          ),
        },
      );
    }
    assert.throws(() => new HonoSessionStore({ ttl: -1 }), {
      name: "TypeError",
      message: /`ttl`/,
    });
    assert.throws(
      // @ts-expect-error an unknown option
      () => new HonoSessionStore({ bogus: 1 }),
      { name: "TypeError", message: /unknown option `bogus`/ },
    );
    assert.throws(
      // @ts-expect-error pg's options are not postgres.js's
      () => new HonoSessionStore({ pool: {} }),
      { name: "TypeError", message: /`pool` is for pg/ },
    );

    // createTableIfMissing makes the schema and table the Express store would.
    const schemaName = uniqueName("hono");
    const store = new HonoSessionStore({
      postgres: bed.sql,
      schemaName,
      createTableIfMissing: true,
      pruneSessionInterval: false,
    });
    try {
      await store.createSession("sid", {
        _data: {},
        _expire: null,
        _delete: false,
        _accessed: null,
      });
      const [{ columns }] = await bed.sql.unsafe(
        `SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) AS columns
       FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'session'`,
        [schemaName],
      );
      assert.equal(
        columns,
        "sid character varying, sess json, expire timestamp without time zone",
      );
    } finally {
      await store.close();
      await bed.sql.unsafe(`DROP SCHEMA IF EXISTS "${schemaName}" CASCADE`);
    }
  },
);

const CLI = sibling("../src/cli", import.meta.url);

function json(result: ChildResult): Record<string, unknown> {
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

storeTest(
  `Hono on ${RUNTIME} and Express on one table: each keeps its own sessions, and pruning and the CLI serve both`,
  async (bed) => {
    const hono = honoStore(bed);
    const express5 = bed.store();
    const apps = await Promise.all([
      startCounterApp(express, express5),
      startHonoApp(hono),
    ]);
    const [onExpress, onHono] = apps.map((app) => async (cookie?: string) => {
      const answer = await request(app.url, "/count", cookie);
      assert.equal(answer.status, 200);
      return answer;
    });
    try {
      const e = await onExpress();
      const h = await onHono();
      assert.equal((await onExpress(e.setCookie)).count, 2);
      assert.equal((await onHono(h.setCookie)).count, 2);
      assert.deepEqual((await express5.ids()).sort(), [e.id, h.id].sort());

      // The Express session id, sent as the Hono cookie: not a hono-sessions
      // session, so Hono starts its own and leaves the Express row alone.
      const expressRow = await bed.row(e.id);
      const stray = await onHono(`session=${e.id}`);
      assert.equal(stray.count, 1);
      assert.notEqual(stray.id, e.id);
      assert.deepEqual(await bed.row(e.id), expressRow);
      assert.equal(
        (await onExpress(e.setCookie)).count,
        3,
        "Express still has it",
      );

      // One prune, from either store, deletes expired sessions of both.
      await shiftExpiry(bed, e.id, -2 * 86400);
      await shiftExpiry(bed, h.id, -2 * 86400);
      assert.equal(await hono.pruneSessions(), 2);
      assert.equal(await bed.row(e.id), undefined);
      assert.equal(await bed.row(h.id), undefined);

      // And so does the command line.
      const [e2, h2] = [await onExpress(), await onHono()];
      await shiftExpiry(bed, e2.id, -2 * 86400);
      await shiftExpiry(bed, h2.id, -2 * 86400);
      const stats = json(
        await runScript(CLI, ["stats", "--schema-name", bed.schema, "--json"]),
      );
      assert.equal(stats.expired, 2, JSON.stringify(stats));
      assert.equal(
        json(
          await runScript(CLI, [
            "prune",
            "--schema-name",
            bed.schema,
            "--json",
          ]),
        ).deleted,
        2,
      );
      assert.deepEqual(
        (await express5.ids()).sort(),
        [stray.id].sort(),
        "only the unexpired Hono session is left",
      );
    } finally {
      await Promise.all(apps.map((app) => app.close()));
      await hono.close();
    }
  },
);

storeTest(
  "HonoSessionStore: maxLifetime ends a session past it; userKey is refused, pointing to the express-session store",
  async (bed) => {
    assert.throws(
      () => new HonoSessionStore({ userKey: "user" } as never),
      {
        name: "TypeError",
        message:
          /`userKey` does not apply to hono-sessions.*sessionsOf and destroyOf/,
      },
    );
    const store = honoStore(bed, {
      maxLifetime: 3600,
      createTableIfMissing: true,
    });
    try {
      const data = {
        _data: { user: { value: "ada", flash: false } },
        _expire: null,
        _delete: false,
        _accessed: null,
      };
      await store.createSession("young", { ...data, _id: "young" });
      await store.createSession("old", { ...data, _id: "old" });
      await bed.sql.unsafe(
        `UPDATE ${bed.table} SET created = now() - interval '2 hours' WHERE sid = 'old'`,
      );
      assert.deepEqual(await store.getSessionById("young"), data);
      assert.equal(await store.getSessionById("old"), null);
    } finally {
      await store.close();
    }
  },
);
