/**
 * The read cache across processes: store A in this process, store B in a
 * child (`_cache_child.ts`), on one table. What B serves from memory must be
 * what the table holds once the notification of a change has arrived,
 * whoever made the change.
 *
 * Behind PgBouncer in transaction mode `LISTEN` cannot work through the
 * pooler: these tests then give each store's listener a direct connection
 * (`DIRECT_DATABASE_URL`, which `.ci/with_pgbouncer` exports), as the README
 * tells users to.
 */
import assert from "node:assert/strict";
import process from "node:process";
import { randomBytes } from "node:crypto";
import {
  type AddressInfo,
  connect as connectSocket,
  createServer,
  type Socket,
} from "node:net";
import postgres from "postgres";
import {
  BEHIND_PGBOUNCER,
  DATABASE_URL,
  type PostgresSql,
  type PostgresStoreOptions,
  sessionData,
  storeTest,
  type TestBed,
  uniqueName,
} from "./_helpers.ts";
import { type ChildResult, sibling, spawnScript } from "./_spawn.ts";
import { PgStoreClass } from "./_compat.ts";
import pg from "pg";

/** Whether the suite runs under Bun (the children run under it too). */
const UNDER_BUN = "Bun" in globalThis;

const CHILD = sibling("./_cache_child", import.meta.url);
const DIRECT_URL = process.env.DIRECT_DATABASE_URL;
/** How long a notification may take to arrive, at most, on a loaded CI machine. */
const ARRIVAL_MS = 10_000;

const skip = BEHIND_PGBOUNCER && !DIRECT_URL &&
  "behind PgBouncer LISTEN needs a direct connection (DIRECT_DATABASE_URL)";

/** A session as B reads it back: JSON, so no Date objects. */
function stored(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

/** Store B in its own process. */
interface Child {
  /** Its connections' `application_name`. */
  app: string;
  get(sid: string): Promise<unknown>;
  /** The `v` of the session (`null` for none), without sending the session back. */
  version(sid: string): Promise<unknown>;
  /** Reads until the session equals `value`; resolves to the last one read. */
  until(sid: string, value: unknown, ms?: number): Promise<unknown>;
  set(sid: string, value: unknown): Promise<void>;
  /** Closes the store and stdin; resolves when the process has exited. */
  close(): Promise<{ exit: ChildResult; report: ChildReport }>;
}

interface ChildReport {
  errors: string[];
  rejections: string[];
}

async function startChild(
  schema: string,
  listenUrl: string | undefined,
  maxAge: number | undefined,
): Promise<Child> {
  const app = uniqueName("cache_child");
  const waiting = new Map<number, (reply: Record<string, unknown>) => void>();
  let report: ChildReport | undefined;
  const child = spawnScript(CHILD, [schema], {
    env: {
      PGAPPNAME: app,
      ...(listenUrl ? { CACHE_LISTEN_URL: listenUrl } : {}),
      ...(maxAge ? { CACHE_MAX_AGE: String(maxAge) } : {}),
    },
    timeoutMs: 120_000,
    onLine(line) {
      if (!line.startsWith("{")) return;
      const reply = JSON.parse(line);
      if ("rejections" in reply) report = reply;
      else waiting.get(reply.id)?.(reply);
    },
  });
  await child.ready;
  let ids = 0;
  const ask = (command: Record<string, unknown>) =>
    new Promise<unknown>((resolve, reject) => {
      const id = ids++;
      waiting.set(id, (reply) => {
        waiting.delete(id);
        if ("error" in reply) reject(new Error(String(reply.error)));
        else resolve(reply.result);
      });
      child.send(JSON.stringify({ id, ...command }));
    });
  return {
    app,
    get: (sid) => ask({ op: "get", sid }),
    version: (sid) => ask({ op: "version", sid }),
    async until(sid, value, ms = ARRIVAL_MS) {
      const { session } = await ask({ op: "until", sid, value, ms }) as {
        session: unknown;
      };
      return session;
    },
    set: (sid, value) => ask({ op: "set", sid, value }).then(() => {}),
    async close() {
      await ask({ op: "close" });
      child.end();
      const exit = await child.result;
      return {
        exit,
        report: report ?? { errors: ["no report"], rejections: [] },
      };
    },
  };
}

/**
 * A TCP gate between B's listener and the server: while closed, it refuses
 * new connections, so B cannot listen again until the test opens it; while
 * silent, it drops every byte of the connections it holds without closing
 * them, as a network or proxy that cuts a connection without telling.
 */
interface Gate {
  url: string;
  open: boolean;
  silent: boolean;
  stop(): Promise<void>;
}

async function startGate(target: string): Promise<Gate> {
  const to = new URL(target);
  const pairs = new Set<Socket>();
  const server = createServer((client) => {
    if (!gate.open) {
      client.destroy();
      return;
    }
    const upstream = connectSocket(Number(to.port || 5432), to.hostname);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(client);
      pairs.delete(upstream);
    };
    for (const socket of [client, upstream]) {
      pairs.add(socket);
      socket.on("error", drop).on("close", drop);
    }
    client.on("data", (chunk) => gate.silent || upstream.write(chunk));
    upstream.on("data", (chunk) => gate.silent || client.write(chunk));
  });
  await new Promise<void>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve())
  );
  const url = new URL(target);
  url.hostname = "127.0.0.1";
  url.port = String((server.address() as AddressInfo).port);
  const gate: Gate = {
    url: url.href,
    open: true,
    silent: false,
    async stop() {
      for (const socket of pairs) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  return gate;
}

/** What a two-process test gets: store A, child B, and direct row changes. */
interface CacheBed extends TestBed {
  /** The gate in front of B's listener, with `{ gate: true }`. */
  gate: Gate | undefined;
  a: ReturnType<TestBed["store"]>;
  b: Child;
  /** The `cache` option for stores of this test. */
  cache: PostgresStoreOptions["cache"];
  /** Changes a row without firing its triggers: no notification. */
  sneak(sid: string, value: unknown): Promise<void>;
}

function cacheTest(
  name: string,
  fn: (bed: CacheBed) => Promise<void>,
  { gate: gated = false, maxAge }: { gate?: boolean; maxAge?: number } = {},
): void {
  storeTest(name, async (bed) => {
    const direct: PostgresSql | undefined = BEHIND_PGBOUNCER
      ? postgres(DIRECT_URL!, { max: 2, onnotice: () => {} })
      : undefined;
    const cache = direct ? { listen: direct } : true;
    // A installs the triggers on the table.sql table the test starts with.
    const a = bed.store({ cache, createTableIfMissing: true });
    await a.get("warm-up");
    const gate = gated
      ? await startGate(BEHIND_PGBOUNCER ? DIRECT_URL! : DATABASE_URL)
      : undefined;
    const b = await startChild(
      bed.schema,
      gate?.url ?? (BEHIND_PGBOUNCER ? DIRECT_URL : undefined),
      maxAge,
    );
    let closed = false;
    try {
      await fn({
        ...bed,
        a,
        cache,
        gate,
        async sneak(sid, value) {
          await bed.sql.begin(async (tx) => {
            await tx.unsafe("SET LOCAL session_replication_role = replica");
            await tx.unsafe(
              `UPDATE ${bed.table} SET sess = $2::text::json WHERE sid = $1`,
              [sid, JSON.stringify(value)],
            );
          });
        },
        b: {
          ...b,
          async close() {
            closed = true;
            return await b.close();
          },
        },
      });
    } finally {
      if (!closed) {
        const { exit, report } = await b.close();
        assert.equal(exit.code, 0, exit.stderr);
        assert.deepEqual(report, { errors: [], rejections: [] });
      }
      await a.close();
      await direct?.end();
      await gate?.stop();
    }
  }, { skip });
}

/** Reads in this process until the session equals `value`, yielding between reads. */
async function untilIn(
  store: { get(sid: string): Promise<unknown> },
  sid: string,
  value: unknown,
): Promise<unknown> {
  const deadline = Date.now() + ARRIVAL_MS;
  const want = JSON.stringify(value);
  for (;;) {
    const session = await store.get(sid);
    if (JSON.stringify(session) === want || Date.now() > deadline) {
      return session;
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** Sets `sid` in A and makes B cache it, proven by a change B cannot hear. */
async function cachedInB(bed: CacheBed, sid: string, value: unknown) {
  await bed.a.set(sid, value as never);
  assert.deepEqual(await bed.b.get(sid), stored(value));
  await bed.sneak(sid, { sneaked: true });
  assert.deepEqual(
    await bed.b.get(sid),
    stored(value),
    "B serves the session from memory: it did not hear the sneaked change",
  );
}

const v1 = sessionData({ v: 1 });
const v2 = sessionData({ v: 2 });

cacheTest(
  "a destroy in one process: the other's get returns null once the notification arrives",
  async (bed) => {
    await cachedInB(bed, "s1", v1);
    await bed.a.destroy("s1");
    assert.equal(await bed.b.until("s1", null), null);
    assert.equal(await bed.b.get("s1"), null);
  },
);

cacheTest(
  "a set in one process is what the other reads next, both ways",
  async (bed) => {
    await cachedInB(bed, "s1", v1);
    await bed.a.set("s1", v2);
    assert.deepEqual(await bed.b.until("s1", stored(v2)), stored(v2));
    assert.deepEqual(await bed.b.get("s1"), stored(v2));
    // B's own write is what B reads at once; A hears it.
    const v3 = sessionData({ v: 3 });
    await bed.b.set("s1", v3);
    assert.deepEqual(await bed.b.get("s1"), stored(v3));
    assert.deepEqual(await untilIn(bed.a, "s1", v3), stored(v3));
  },
);

cacheTest(
  "a miss is never cached: a session created elsewhere is read at once",
  async (bed) => {
    assert.equal(await bed.b.get("new"), null);
    await bed.a.set("new", v1);
    assert.deepEqual(await bed.b.get("new"), stored(v1));
  },
);

cacheTest(
  "a DELETE, an UPDATE and a TRUNCATE by hand invalidate",
  async (bed) => {
    await cachedInB(bed, "s1", v1);
    await bed.sql.unsafe(`DELETE FROM ${bed.table} WHERE sid = 's1'`);
    assert.equal(await bed.b.until("s1", null), null);

    await cachedInB(bed, "s2", v1);
    await bed.sql.unsafe(
      `UPDATE ${bed.table} SET sess = $1::text::json WHERE sid = 's2'`,
      [JSON.stringify(v2)],
    );
    assert.deepEqual(await bed.b.until("s2", stored(v2)), stored(v2));

    await cachedInB(bed, "s3", v1);
    await cachedInB(bed, "s4", v2);
    await bed.sql.unsafe(`TRUNCATE ${bed.table}`);
    assert.equal(await bed.b.until("s3", null), null);
    assert.equal(await bed.b.get("s4"), null);
  },
);

cacheTest("connect-pg-simple's writes invalidate", async (bed) => {
  const pool = new pg.Pool({
    connectionString: BEHIND_PGBOUNCER ? DIRECT_URL : process.env.DATABASE_URL,
    max: 2,
  });
  const cps = new PgStoreClass({
    pool,
    schemaName: bed.schema,
    pruneSessionInterval: false,
  });
  const call = (fn: (cb: (error: Error | null) => void) => void) =>
    new Promise<void>((resolve, reject) =>
      fn((error) => error ? reject(error) : resolve())
    );
  try {
    await cachedInB(bed, "s1", v1);
    await call((cb) => cps.set("s1", v2, cb));
    assert.deepEqual(await bed.b.until("s1", stored(v2)), stored(v2));
    await cachedInB(bed, "s2", v1);
    await call((cb) => cps.touch("s2", sessionData({ v: 1 }, 7200), cb));
    // The touch moved only the expiry, but B reads the row again: what the
    // table holds is the sneaked session.
    assert.deepEqual(await bed.b.until("s2", { sneaked: true }), {
      sneaked: true,
    });
    await call((cb) => cps.destroy("s1", cb));
    assert.equal(await bed.b.until("s1", null), null);
  } finally {
    await cps.close();
    await pool.end();
  }
});

cacheTest(
  "clear() in one process empties the other's cache",
  async (bed) => {
    await cachedInB(bed, "s1", v1);
    await cachedInB(bed, "s2", v2);
    await bed.a.clear();
    assert.equal(await bed.b.until("s1", null), null);
    assert.equal(await bed.b.get("s2"), null);
  },
);

/** The backends of B's listener: the connections of B that ran LISTEN last. */
async function listenerPids(sql: PostgresSql, app: string): Promise<number[]> {
  const rows = await sql.unsafe(
    `SELECT pid FROM pg_stat_activity
     WHERE application_name = $1 AND query LIKE 'LISTEN %'`,
    [app],
  );
  return rows.map((row) => row.pid as number);
}

cacheTest(
  "a terminated listener: nothing is served from memory while it is down, and the cache serves again once it is back",
  async (bed) => {
    const { sql, b, gate } = bed;
    await cachedInB(bed, "s1", v1);
    const [pid] = await listenerPids(sql, b.app);
    assert.ok(pid, "B's listener is connected");
    gate!.open = false; // B cannot listen again until the gate opens
    await sql.unsafe("SELECT pg_terminate_backend($1)", [pid]);
    // B learns of it when its connection closes: from then on it reads the
    // table, where the sneaked session is.
    assert.deepEqual(await b.until("s1", { sneaked: true }), { sneaked: true });
    // A change B cannot hear: B reads it all the same, and keeps reading
    // the table while it cannot listen.
    await bed.a.set("s1", v2);
    assert.deepEqual(await b.get("s1"), stored(v2));
    await bed.sneak("s1", { sneaked: 2 });
    assert.deepEqual(await b.get("s1"), { sneaked: 2 });

    // B listens again on its own once it can; then it serves from memory
    // again: a sneaked change is not seen once B has cached the session anew.
    gate!.open = true;
    const back = Date.now() + ARRIVAL_MS;
    for (let round = 0;; round++) {
      assert.ok(Date.now() < back, "B's cache serves again after reconnecting");
      const value = sessionData({ v: 10 + round });
      await bed.a.set("s1", value);
      if (
        JSON.stringify(await b.until("s1", stored(value))) !==
          JSON.stringify(value)
      ) continue;
      await bed.sneak("s1", { sneaked: round });
      if (JSON.stringify(await b.get("s1")) === JSON.stringify(value)) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const [again] = await listenerPids(sql, b.app);
    assert.ok(
      again !== undefined && again !== pid,
      "a new listening connection",
    );
    const { exit, report } = await b.close();
    assert.equal(exit.code, 0, exit.stderr);
    assert.deepEqual(report.rejections, []);
    // One log line when a first attempt to listen again fails. Under Bun,
    // postgres.js may wait for the gate instead of failing that attempt, so
    // there may be none.
    assert.ok(
      report.errors.length === 1 || (UNDER_BUN && report.errors.length === 0),
      report.errors.join("\n"),
    );
    for (const error of report.errors) {
      assert.match(error, /lost its listening connection/);
    }
  },
  { gate: true },
);

cacheTest(
  "a listener cut silently: its heartbeat notices, nothing is served from memory meanwhile, and a new one takes over",
  async (bed) => {
    const { b, gate } = bed;
    await cachedInB(bed, "s1", v1);
    // No close reaches B: only its heartbeat, every 4 s (maxAge 8 / 2), can
    // tell, well before maxAge would expire what it holds.
    gate!.silent = true;
    gate!.open = false;
    assert.deepEqual(await b.until("s1", { sneaked: true }), { sneaked: true });
    await bed.sneak("s1", { sneaked: 2 });
    assert.deepEqual(
      await b.get("s1"),
      { sneaked: 2 },
      "B reads the table: it knows it cannot hear",
    );
    gate!.silent = false;
    gate!.open = true;
    const back = Date.now() + ARRIVAL_MS;
    for (let round = 0;; round++) {
      assert.ok(Date.now() < back, "B's cache serves again");
      const value = sessionData({ v: 10 + round });
      await bed.a.set("s1", value);
      await b.until("s1", stored(value));
      await bed.sneak("s1", { sneaked: round });
      if (JSON.stringify(await b.get("s1")) === JSON.stringify(value)) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const { exit, report } = await b.close();
    assert.equal(exit.code, 0, exit.stderr);
    assert.deepEqual(report.rejections, []);
    assert.match(report.errors[0], /stopped hearing the table/);
  },
  { gate: true, maxAge: 8 },
);

cacheTest(
  "close(): the listener's connection ends and the process exits by itself",
  async (bed) => {
    await cachedInB(bed, "s1", v1);
    assert.equal((await listenerPids(bed.sql, bed.b.app)).length, 1);
    const { exit, report } = await bed.b.close();
    assert.equal(exit.code, 0, exit.stderr);
    assert.deepEqual(report, { errors: [], rejections: [] });
    const deadline = Date.now() + ARRIVAL_MS;
    while ((await listenerPids(bed.sql, bed.b.app)).length > 0) {
      assert.ok(Date.now() < deadline, "no listener left on the server");
    }
  },
);

cacheTest(
  "a notification that arrives while a get is in flight: that read is not cached",
  async (bed) => {
    const { sql, b, table } = bed;
    // A large session keeps B's get in flight long after its snapshot: the
    // server is still sending it when the update commits, so the update's
    // notification reaches B before the old session has.
    const blob = randomBytes(65536).toString("base64").repeat(200);
    const reading = () =>
      sql.unsafe(
        `SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE application_name = $1 AND state = 'active' AND query LIKE '%sess::text%'`,
        [b.app],
      ).then(([row]) => row.n > 0);
    let overtaken = 0;
    for (let attempt = 0; attempt < 5 && overtaken === 0; attempt++) {
      const sid = `big-${attempt}`;
      await bed.insert(
        sid,
        JSON.stringify({ v: 1, blob }),
        Math.ceil(Date.now() / 1000) + 3600,
      );
      const first = b.version(sid);
      const deadline = Date.now() + ARRIVAL_MS;
      while (!await reading()) {
        assert.ok(Date.now() < deadline, "B's get reaches the server");
      }
      await sql.unsafe(
        `UPDATE ${table} SET sess = '{"v":2}' WHERE sid = $1`,
        [sid],
      );
      const inFlight = await reading();
      const read = await first;
      assert.equal(
        await b.version(sid),
        2,
        "B does not keep the read that the notification overtook",
      );
      if (inFlight && read === 1) overtaken++;
    }
    assert.ok(overtaken > 0, "a notification overtook a read in flight");
  },
);

cacheTest(
  "destroyOf in one process: its own cache drops the sessions at once, the other's once the notification arrives",
  async (bed) => {
    // A's listener behind a gate that can go silent: A then hears nothing,
    // so what it stops serving, it stops serving from destroyOf's answer.
    const gate = await startGate(BEHIND_PGBOUNCER ? DIRECT_URL! : DATABASE_URL);
    const listen = postgres(gate.url, { max: 1, onnotice: () => {} });
    const a = bed.store({
      cache: { listen },
      userKey: "passport.user",
    });
    try {
      const ada1 = sessionData({ v: 1, passport: { user: "ada" } });
      const ada2 = sessionData({ v: 2, passport: { user: "ada" } });
      const ada = (v: number) => v === 1 ? ada1 : ada2;
      const bob = sessionData({ v: 1, passport: { user: "bob" } });
      for (const [sid, value] of [["ada-1", ada(1)], ["ada-2", ada(2)]]) {
        await a.set(sid as string, value as never);
      }
      await cachedInB(bed, "bob-1", bob);
      for (const sid of ["ada-1", "ada-2"]) {
        assert.deepEqual(
          await bed.b.get(sid),
          stored(sid === "ada-1" ? ada(1) : ada(2)),
        );
        // The owner stays, so destroyOf still finds the row; neither store
        // hears of this change, so each serves the session from memory.
        await bed.sneak(sid, { passport: { user: "ada" }, sneaked: true });
      }
      assert.deepEqual(
        await a.get("ada-1"),
        stored(ada(1)),
        "A serves it from memory",
      );
      assert.deepEqual(
        await bed.b.get("ada-1"),
        stored(ada(1)),
        "B serves it from memory",
      );

      gate.silent = true;
      assert.equal(await a.destroyOf("ada", { except: "ada-2" }), 1);
      assert.equal(await a.get("ada-1"), null, "A: gone at once, unheard");
      assert.deepEqual(
        await a.get("ada-2"),
        stored(ada(2)),
        "A: the session kept is still served from memory",
      );
      assert.equal(await bed.b.until("ada-1", null), null);
      assert.deepEqual(
        await bed.b.get("bob-1"),
        stored(bob),
        "B: bob's stays cached",
      );
      assert.equal(await a.destroyOf("ada"), 1);
      assert.equal(await a.get("ada-2"), null);
      assert.equal(await bed.b.until("ada-2", null), null);
    } finally {
      gate.silent = false;
      await a.close();
      await listen.end();
      await gate.stop();
    }
  },
);
