import assert from "node:assert/strict";
import { test } from "node:test";
import { createServer, type Server } from "node:net";
import { DATABASE_URL, nowSeconds, storeTest } from "./_helpers.ts";
import { type ChildResult, runScript, sibling } from "./_spawn.ts";

const CLI = sibling("../src/cli", import.meta.url);

function cli(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<ChildResult> {
  return runScript(CLI, args, { env, timeoutMs: 60_000 });
}

function json(result: ChildResult): Record<string, unknown> {
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      resolve((server.address() as { port: number }).port);
    })
  );
}

test("--help prints the commands and options and exits 0", async () => {
  const result = await cli(["--help"], { DATABASE_URL: undefined });
  assert.equal(result.code, 0);
  for (const word of ["prune", "create-table", "stats", "--schema-name"]) {
    assert.match(result.stdout, new RegExp(word));
  }
  assert.equal(result.stderr, "");
});

test("usage errors exit 2 with a message and a pointer to --help", async () => {
  const cases: [string[], RegExp][] = [
    [[], /no command given/],
    [["vacuum"], /unknown command "vacuum"/],
    [["stats", "--tabel-name", "x"], /--tabel-name/],
    [["stats", "extra"], /unexpected argument "extra"/],
    [["stats", "--table-name", ""], /--table-name must be a non-empty string/],
    [["prune", "--connect-timeout", "soon"], /--connect-timeout must be/],
    [["migrate"], /migrate needs at least one of .*--notify/],
    [["stats", "--notify"], /--notify is for create-table and migrate/],
    [["prune", "--timeout", "0"], /--timeout must be a positive number/],
  ];
  const results = await Promise.all(cases.map(([args]) => cli(args)));
  for (const [i, result] of results.entries()) {
    const [args, message] = cases[i];
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, message);
    assert.match(result.stderr, /--help/);
    assert.equal(result.stdout, "");
  }
});

storeTest(
  "create-table creates the schema, table and index once",
  async ({ sql, schema }) => {
    const target = `${schema}_made`;
    try {
      const first = json(
        await cli(["create-table", "--schema-name", target, "--json"]),
      );
      assert.deepEqual(first, {
        schema: target,
        table: "session",
        created: true,
      });
      const indexes = await sql.unsafe(
        `SELECT indexname FROM pg_indexes WHERE schemaname = $1 ORDER BY 1`,
        [target],
      );
      assert.deepEqual(indexes.map((row) => row.indexname), [
        "IDX_session_expire",
        "session_pkey",
      ]);
      const again = await cli(["create-table", "--schema-name", target]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /already exists/);
    } finally {
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${target}" CASCADE`);
    }
  },
  { createTable: false },
);

storeTest(
  "stats counts total, live and expired sessions",
  async ({ schema, insert }) => {
    const now = nowSeconds();
    await insert("live-1", "{}", now + 600);
    await insert("live-2", "{}", now + 600);
    await insert("gone", "{}", now - 600);
    assert.deepEqual(
      json(await cli(["stats", "--schema-name", schema, "--json"])),
      {
        schema,
        table: "session",
        total: 3,
        live: 2,
        expired: 1,
      },
    );
    const words = await cli(["stats", "--schema-name", schema]);
    assert.match(words.stdout, /3 sessions, 2 live, 1 expired/);
  },
);

storeTest(
  "prune deletes every expired session, over several batches, and only those",
  async ({ sql, schema, table, insert }) => {
    await sql.unsafe(`INSERT INTO ${table} (sid, sess, expire)
      SELECT 'old-' || i, '{}', now() - interval '1 hour'
      FROM generate_series(1, 2500) AS i`);
    await insert("live", "{}", nowSeconds() + 600);
    const result = await cli(["prune", "--schema-name", schema]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /deleted 2500 expired sessions/);
    const rows = await sql.unsafe(`SELECT sid FROM ${table}`);
    assert.deepEqual(rows.map((row) => row.sid), ["live"]);
    assert.equal(
      json(await cli(["prune", "--schema-name", schema, "--json"])).deleted,
      0,
    );
  },
);

storeTest(
  "without DATABASE_URL the PG* variables are used; --database-url wins over DATABASE_URL",
  async ({ schema, insert }) => {
    await insert("live", "{}", nowSeconds() + 600);
    const url = new URL(DATABASE_URL);
    const pg = {
      DATABASE_URL: undefined,
      PGHOST: url.hostname,
      PGPORT: url.port || "5432",
      PGUSER: decodeURIComponent(url.username),
      PGPASSWORD: decodeURIComponent(url.password) || undefined,
      PGDATABASE: url.pathname.slice(1) || undefined,
    };
    const args = ["stats", "--schema-name", schema, "--json"];
    const [fromPg, fromFlag] = await Promise.all([
      cli(args, pg),
      cli([...args, "--database-url", DATABASE_URL], {
        DATABASE_URL: "postgres://nobody@127.0.0.1:1/nothing",
      }),
    ]);
    assert.equal(json(fromPg).total, 1);
    assert.equal(json(fromFlag).total, 1);
  },
);

storeTest(
  "a missing table exits 1 and says to run create-table",
  async ({ schema }) => {
    const result = await cli([
      "prune",
      "--schema-name",
      schema,
      "--table-name",
      "nope",
    ]);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /"nope" does not exist \(run `connect-postgres-simple create-table` first\)/,
    );
    assert.equal(result.stdout, "");
  },
  { createTable: false },
);

test("an unreachable database exits 1 with a clear message, in bounded time", async () => {
  // A closed port refuses at once; a server that accepts and never answers
  // is only given up on after --connect-timeout.
  const closed = createServer();
  const closedPort = await listen(closed);
  await new Promise((resolve) => closed.close(resolve));
  const silent = createServer(() => {});
  const silentPort = await listen(silent);
  try {
    const [refused, hung] = await Promise.all([
      cli([
        "stats",
        "--database-url",
        `postgres://u@127.0.0.1:${closedPort}/db`,
      ]),
      cli([
        "stats",
        "--connect-timeout",
        "1",
        "--database-url",
        `postgres://u@127.0.0.1:${silentPort}/db`,
      ]),
    ]);
    for (const result of [refused, hung]) {
      assert.equal(result.code, 1, result.stderr);
      assert.match(
        result.stderr,
        /^connect-postgres-simple: cannot connect to the database: /,
      );
      assert.equal(result.stdout, "");
    }
    assert.match(refused.stderr, /ECONNREFUSED/);
    assert.match(hung.stderr, /CONNECT_TIMEOUT/);
    // Startup of the runtime included; without the timeout it would wait 10 s.
    assert.ok(hung.millis < 8_000, `gave up after ${hung.millis} ms`);
  } finally {
    silent.close();
  }
});

test("connect_timeout comes from the URL or PGCONNECT_TIMEOUT when no flag gives it", async () => {
  const silent = createServer(() => {});
  const port = await listen(silent);
  try {
    const [fromUrl, fromEnv] = await Promise.all([
      cli([
        "stats",
        "--database-url",
        `postgres://u@127.0.0.1:${port}/db?connect_timeout=1`,
      ]),
      cli(["stats", "--database-url", `postgres://u@127.0.0.1:${port}/db`], {
        PGCONNECT_TIMEOUT: "1",
      }),
    ]);
    for (const result of [fromUrl, fromEnv]) {
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /CONNECT_TIMEOUT/);
      // The default is 10 s; these give up after 1 s (plus the runtime's start).
      assert.ok(result.millis < 8_000, `gave up after ${result.millis} ms`);
    }
  } finally {
    silent.close();
  }
});

storeTest(
  "prune waits at most --timeout for a lock on the table, says so, exits 1 and deletes nothing",
  async ({ sql, schema, table, fill }) => {
    await fill("expired", 20, -60);
    let unlock = () => {};
    const unlocked = new Promise<void>((resolve) => unlock = resolve);
    const holder = sql.begin(async (tx) => {
      await tx.unsafe(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
      await unlocked;
    });
    try {
      // Wait until the lock is held before starting the command.
      for (;;) {
        const [{ held }] = await sql.unsafe(
          `SELECT count(*)::int AS held FROM pg_locks
           WHERE relation = to_regclass($1) AND mode = 'AccessExclusiveLock' AND granted`,
          [table],
        );
        if (held) break;
      }
      const result = await cli([
        "prune",
        "--schema-name",
        schema,
        "--timeout",
        "1",
      ]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(
        result.stderr,
        /"session" is locked by another transaction: gave up after 1 s \(--timeout\); nothing was changed/,
      );
      assert.ok(result.millis < 15_000, `gave up after ${result.millis} ms`);
    } finally {
      unlock();
      await holder;
    }
    const [{ count }] = await sql.unsafe(
      `SELECT count(*)::int AS count FROM ${table}`,
    );
    assert.equal(count, 20, "the prune that gave up deleted nothing");
  },
);
