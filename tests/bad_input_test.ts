/**
 * Bad input: bad ids and sessions are an `Error` through the callback, or are
 * stored correctly (wrong options: tests/options_test.ts).
 * Never a crash, a hang, or damage to other sessions: after each bad call,
 * the bystander sessions of the table are checked byte for byte.
 *
 * @module
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { randomBytes } from "node:crypto";
import {
  connect,
  PostgresStoreClass,
  sessionData,
  storeTest,
  type TestBed,
  uniqueName,
  viaCallback,
} from "./_helpers.ts";
import type { PostgresStore, PostgresStoreOptions } from "../mod.ts";

const BYSTANDERS = ["bystander-1", "bystander-2"];

/** Stores two bystander sessions and returns a check that they are unchanged. */
async function bystanders(
  s: PostgresStore,
  bed: TestBed,
): Promise<() => Promise<void>> {
  for (const sid of BYSTANDERS) await s.set(sid, sessionData({ sid }));
  const before = await Promise.all(BYSTANDERS.map((sid) => bed.row(sid)));
  return async () => {
    const after = await Promise.all(BYSTANDERS.map((sid) => bed.row(sid)));
    assert.deepEqual(after, before, "the other sessions are intact");
  };
}

/** Calls with a callback; asserts it fires once, with an Error matching `pattern`. */
async function failsWith(
  call: (cb: (error: Error | null) => void) => unknown,
  pattern: RegExp,
): Promise<Error> {
  const { error, calls } = await viaCallback(call);
  assert.equal(calls, 1);
  assert.ok(error instanceof Error, `an Error, got ${error}`);
  assert.match(error.message, pattern);
  return error;
}

test("a hostile table name is quoted: it cannot drop another table", async () => {
  const sql = connect();
  const schema = uniqueName("hostile");
  try {
    await sql.unsafe(`CREATE SCHEMA "${schema}"`);
    await sql.unsafe(`CREATE TABLE "${schema}"."victim" (id int)`);
    await sql.unsafe(`INSERT INTO "${schema}"."victim" VALUES (1)`);
    const names = [
      'x"; DROP TABLE "victim"; --',
      `x"; DROP TABLE "${schema}"."victim"; --`,
      "line\nbreak; -- comment",
      "it's 'quoted' ; DROP TABLE victim",
      "日本語 🎉 sessions",
      "a.b",
      "ß".repeat(31) + "x", // 63 bytes, PostgreSQL's longest name
    ];
    for (const tableName of names) {
      const options: PostgresStoreOptions = {
        postgres: sql,
        schemaName: schema,
        tableName,
        createTableIfMissing: true,
        pruneSessionInterval: false,
      };
      const store = new PostgresStoreClass(options);
      try {
        await store.set("sid", sessionData({ tableName }));
        await store.touch("sid", sessionData({}, 7200));
        assert.deepEqual(
          (await store.get("sid") as unknown as { tableName: string })
            .tableName,
          tableName,
        );
        assert.equal(await store.length(), 1);
        assert.equal(await store.pruneSessions(), 0);
        const [{ count }] = await sql.unsafe(
          `SELECT count(*)::int AS count FROM "${schema}"."${
            tableName.replaceAll('"', '""')
          }"`,
        );
        assert.equal(
          count,
          1,
          `${JSON.stringify(tableName)} holds the session`,
        );
        await store.destroy("sid");
      } finally {
        await store.close();
      }
      const [{ victims }] = await sql.unsafe(
        `SELECT count(*)::int AS victims FROM "${schema}"."victim"`,
      );
      assert.equal(
        victims,
        1,
        `victim intact after ${JSON.stringify(tableName)}`,
      );
    }
    // A hostile schema name, too.
    const hostileSchema = `h"; DROP SCHEMA "${schema}" CASCADE; --`;
    const store = new PostgresStoreClass({
      postgres: sql,
      schemaName: hostileSchema,
      createTableIfMissing: true,
      pruneSessionInterval: false,
    });
    try {
      await store.set("sid", sessionData());
      assert.equal(await store.length(), 1);
    } finally {
      await store.close();
      await sql.unsafe(
        `DROP SCHEMA IF EXISTS "${
          hostileSchema.replaceAll('"', '""')
        }" CASCADE`,
      );
    }
    const [{ victims }] = await sql.unsafe(
      `SELECT count(*)::int AS victims FROM "${schema}"."victim"`,
    );
    assert.equal(victims, 1);
  } finally {
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await sql.end();
  }
});

storeTest(
  "session ids: empty, unicode and long ones round-trip",
  async (bed) => {
    const s = bed.store();
    const intact = await bystanders(s, bed);
    const ids = [
      "",
      " ",
      "日本語-🎉-مرحبا-e\u0301",
      "'; DROP TABLE session; --",
      "x".repeat(10_000), // long, but compressible: its index entry fits
    ];
    for (const sid of ids) {
      const data = sessionData({ len: sid.length });
      await s.set(sid, data);
      assert.deepEqual(await s.get(sid), JSON.parse(JSON.stringify(data)));
      await s.touch(sid, sessionData({}, 7200));
      await s.destroy(sid);
      assert.equal(await s.get(sid), null);
      await intact();
    }
  },
);

storeTest(
  "a session id too long to index is a clear error through the callback",
  async (bed) => {
    const s = bed.store();
    const intact = await bystanders(s, bed);
    // Ids that do not compress: PostgreSQL's btree takes at most ~2.7 kB.
    for (const bytes of [3_000, 10_000]) {
      const sid = randomBytes(bytes / 2).toString("hex");
      const error = await failsWith(
        (cb) => s.set(sid, sessionData(), cb),
        /session id too long to store/,
      );
      assert.match(error.message, new RegExp(`${bytes} bytes`));
      // Reads and deletes of such an id find nothing, and fail nothing.
      assert.deepEqual(await viaCallback((cb) => s.get(sid, cb)), {
        error: null,
        result: null,
        calls: 1,
      });
      await s.touch(sid, sessionData());
      await s.destroy(sid);
    }
    await intact();
  },
);

storeTest(
  "session ids that are not strings or hold a NUL byte are errors through the callback",
  async (bed) => {
    const s = bed.store();
    const intact = await bystanders(s, bed);
    for (const sid of ["a\0b", "\0"]) {
      await failsWith((cb) => s.set(sid, sessionData(), cb), /NUL/);
      await failsWith((cb) => s.get(sid, cb), /NUL/);
      await failsWith((cb) => s.touch(sid, sessionData(), cb), /NUL/);
      await failsWith((cb) => s.destroy(sid, cb), /NUL/);
      await intact();
    }
    for (const sid of [undefined, null, 42, {}, ["a"]]) {
      await failsWith(
        (cb) => s.set(sid as never, sessionData(), cb),
        /must be a string/,
      );
      await failsWith((cb) => s.get(sid as never, cb), /must be a string/);
      await intact();
    }
  },
);

storeTest(
  "a session id with a lone surrogate is refused: it would alias another id",
  async (bed) => {
    const s = bed.store();
    // PostgreSQL stores text as UTF-8, where both become U+FFFD.
    await s.set("ls\uFFFD", sessionData({ owner: "U+FFFD" }));
    const intact = await bystanders(s, bed);
    for (const sid of ["ls\uD800", "ls\uDC00", "\uDBFF", "a\uDC00\uD800b"]) {
      await failsWith(
        (cb) => s.set(sid, sessionData({ owner: "intruder" }), cb),
        /lone surrogate/,
      );
      await failsWith((cb) => s.get(sid, cb), /lone surrogate/);
      await failsWith((cb) => s.destroy(sid, cb), /lone surrogate/);
      await failsWith(
        (cb) => s.touch(sid, sessionData(), cb),
        /lone surrogate/,
      );
      await intact();
    }
    assert.deepEqual(
      (await s.get("ls\uFFFD") as unknown as { owner: string }).owner,
      "U+FFFD",
    );
    // A surrogate pair is a real character: accepted, and a row of its own.
    await s.set("ls\uD83D\uDE00", sessionData({ owner: "emoji" }));
    assert.equal(
      (await s.get("ls\uD83D\uDE00") as unknown as { owner: string }).owner,
      "emoji",
    );
    assert.equal(
      (await s.get("ls\uFFFD") as unknown as { owner: string }).owner,
      "U+FFFD",
    );
  },
);

storeTest(
  "sessions that cannot be stored are errors through the callback, and change nothing",
  async (bed) => {
    const s = bed.store();
    const intact = await bystanders(s, bed);
    await s.set("victim", sessionData({ before: true }));
    const stored = await bed.row("victim");
    const circular: Record<string, unknown> = sessionData({}) as never;
    circular.self = circular;
    const cases: [string, unknown, RegExp][] = [
      // V8 says "circular structure", JavaScriptCore (Bun) "cyclic structures".
      ["circular", circular, /cannot be stored as JSON.*(circular|cyclic)/i],
      ["BigInt", sessionData({ n: 10n }), /cannot be stored as JSON.*BigInt/i],
      ["null", null, /must be an object, got null/],
      ["a string", "session", /must be an object, got string/],
      ["a number", 42, /must be an object, got number/],
      ["an array", [sessionData()], /must be an object, got an array/],
      ["undefined", undefined, /must be an object, got undefined/],
      [
        "a throwing toJSON",
        {
          ...sessionData(),
          toJSON() {
            throw new Error("boom");
          },
        },
        /cannot be stored as JSON: boom/,
      ],
      // A toJSON of its own that does not give an object.
      ["toJSON giving a number", { toJSON: () => 5 }, /JSON object.*gave 5/],
      [
        "toJSON giving a string",
        { toJSON: () => "str" },
        /JSON object.*gave "str"/,
      ],
      ["toJSON giving null", { toJSON: () => null }, /JSON object.*gave null/],
      [
        "toJSON giving an array",
        { toJSON: () => [1] },
        /JSON object.*gave \[1\]/,
      ],
      [
        "toJSON giving undefined",
        { toJSON: () => undefined },
        /JSON object.*gave undefined/,
      ],
      [
        "an invalid cookie.expires",
        { cookie: { expires: "not a date" } },
        /cookie\.expires is not a valid date/,
      ],
      [
        "an out-of-range cookie.expires",
        { cookie: { expires: 8.65e15 } },
        /cookie\.expires is not a valid date/,
      ],
    ];
    for (const [what, session, pattern] of cases) {
      await failsWith((cb) => s.set("victim", session as never, cb), pattern)
        .catch((error) => {
          throw new Error(`${what}: ${error.message}`, { cause: error });
        });
      assert.deepEqual(
        await bed.row("victim"),
        stored,
        `${what} left the row alone`,
      );
      await intact();
    }
    await failsWith(
      (cb) => s.touch("victim", { cookie: { expires: "soon" } } as never, cb),
      /cookie\.expires is not a valid date/,
    );
    assert.deepEqual(await bed.row("victim"), stored);
    await intact();
  },
);

storeTest(
  "odd but valid sessions round-trip: 1 MB, NUL characters, lone surrogates",
  async (bed) => {
    const s = bed.store();
    const intact = await bystanders(s, bed);
    const sessions = {
      big: sessionData({ blob: randomBytes(512 * 1024).toString("hex") }),
      nul: sessionData({ text: "a\u0000b", [`key\u0000`]: "\u0000" }),
      surrogate: sessionData({ text: "\ud800 lone \udfff" }),
      noCookie: { user: "ada" },
      cookieNotObject: { cookie: "x", user: "ada" },
    };
    for (const [sid, data] of Object.entries(sessions)) {
      await s.set(sid, data as never);
      assert.deepEqual(await s.get(sid), JSON.parse(JSON.stringify(data)), sid);
      await intact();
    }
  },
);

storeTest(
  "50 concurrent set, touch and destroy calls on one id: no error, a consistent end",
  async (bed) => {
    const stores = [bed.store(), bed.store()];
    const intact = await bystanders(stores[0], bed);
    const sid = "contended";
    const payloads = new Set<string>();
    const calls = Array.from({ length: 50 }, (_, i) => {
      const s = stores[i % 2];
      const data = sessionData({ i });
      payloads.add(JSON.stringify(data));
      return viaCallback((cb) =>
        i % 5 === 3
          ? s.destroy(sid, cb)
          : i % 5 === 4
          ? s.touch(sid, sessionData({}, 7200), cb)
          : s.set(sid, data, cb)
      );
    });
    const results = await Promise.all(calls);
    assert.deepEqual(
      results.filter((r) => r.error !== null || r.calls !== 1),
      [],
    );
    const [{ count }] = await bed.sql.unsafe(
      `SELECT count(*)::int AS count FROM ${bed.table} WHERE sid = $1`,
      [sid],
    );
    assert.ok(count <= 1);
    const final = await stores[0].get(sid);
    assert.ok(
      final === null || payloads.has(JSON.stringify(final)),
      `the final state is one of the writes: ${JSON.stringify(final)}`,
    );
    await stores[1].set(sid, sessionData({ last: true }));
    assert.equal(
      (await stores[0].get(sid) as unknown as { last: boolean }).last,
      true,
    );
    await intact();
  },
);
