/**
 * connect-pg-simple 10 and this store side by side (pruning: manual and
 * automatic prunes, the timer and its randomiser, in both). Helpers:
 * `_compat.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { nowSeconds, sessionData, viaCallback } from "./_helpers.ts";
import { compatTest, pgCall, pgGet, sids, until } from "./_compat.ts";

compatTest(
  "a prune by either removes exactly the expired rows",
  async ({ store, pgStore, sql, table }) => {
    const ours = store();
    const theirs = pgStore();
    const fill = async () => {
      for (
        const [sid, inSeconds] of [["a", -60], ["b", 60], ["c", -1]] as const
      ) {
        await pgCall((cb) =>
          theirs.set(`pg-${sid}`, sessionData({}, inSeconds), cb)
        );
        await ours.set(`ours-${sid}`, sessionData({}, inSeconds));
      }
      await ours.set("no-expiry", sessionData({}, null));
    };
    const live = ["no-expiry", "ours-b", "pg-b"];

    await fill();
    assert.deepEqual(await viaCallback((cb) => theirs.pruneSessions(cb)), {
      error: null,
      result: undefined,
      calls: 1,
    });
    assert.deepEqual(await sids(sql, table), live);

    await fill();
    assert.equal(
      await ours.pruneSessions(),
      4,
      "resolves to the number deleted",
    );
    assert.deepEqual(await sids(sql, table), live);

    await fill();
    assert.deepEqual(await viaCallback((cb) => ours.pruneSessions(cb)), {
      error: null,
      result: 4,
      calls: 1,
    });
    assert.deepEqual(await sids(sql, table), live);
  },
);

compatTest(
  "the prune timer starts on first use, asking the randomiser with the interval in ms",
  async ({ store, pgStore }) => {
    const calls = { pg: [] as number[], ours: [] as number[] };
    const randomizer = (list: number[]) => (delayMs: number) => {
      list.push(delayMs);
      return 2 ** 30;
    };
    const theirs = pgStore({
      pruneSessionInterval: 3600,
      pruneSessionRandomizedInterval: randomizer(calls.pg),
    });
    const ours = store({
      pruneSessionInterval: 3600,
      pruneSessionRandomizedInterval: randomizer(calls.ours),
    });
    assert.deepEqual(calls, { pg: [], ours: [] }, "not at construction");
    await pgGet(theirs, "x");
    await ours.get("x");
    await pgGet(theirs, "x");
    await ours.get("x");
    assert.deepEqual(calls, { pg: [3_600_000], ours: [3_600_000] });
    // Difference: a manual prune with a callback restarts our timer only.
    await pgCall((cb) => theirs.pruneSessions(cb));
    await viaCallback((cb) => ours.pruneSessions(cb));
    assert.deepEqual(calls, { pg: [3_600_000], ours: [3_600_000, 3_600_000] });
  },
);

compatTest(
  "pruneSessionInterval false: neither store prunes nor asks the randomiser",
  async ({ store, pgStore }) => {
    const calls: number[] = [];
    const options = {
      pruneSessionInterval: false as const,
      pruneSessionRandomizedInterval: (d: number) => (calls.push(d), 1),
    };
    const theirs = pgStore(options);
    const ours = store(options);
    await pgCall((cb) => theirs.set("x", sessionData(), cb));
    await ours.set("y", sessionData());
    await pgCall((cb) => theirs.touch("x", sessionData(), cb));
    await ours.touch("y", sessionData());
    assert.deepEqual(calls, []);
  },
);

compatTest(
  "the randomiser's result is the delay, and it is asked again after each prune",
  async ({ store, pgStore, insert, row }) => {
    const run = async (
      start: (randomizer: (d: number) => number) => Promise<unknown>,
      sid: string,
    ) => {
      await insert(sid, "{}", nowSeconds() - 60);
      const calls: number[] = [];
      await start((d) => (calls.push(d), calls.length === 1 ? 1 : 2 ** 30));
      await until(() => calls.length === 2, "the next prune's delay");
      assert.deepEqual(calls, [5_000, 5_000]);
      assert.equal(await row(sid), undefined, "the 1 ms timer pruned");
    };
    await run(
      (r) =>
        pgGet(
          pgStore({
            pruneSessionInterval: 5,
            pruneSessionRandomizedInterval: r,
          }),
          "x",
        ),
      "expired-pg",
    );
    await run(
      (r) =>
        store({ pruneSessionInterval: 5, pruneSessionRandomizedInterval: r })
          .get("x"),
      "expired-ours",
    );
  },
);

compatTest(
  "a failed automatic prune goes to errorLog('Failed to prune sessions:', err) in both, and pruning goes on",
  async ({ store, pgStore }) => {
    const logs = { pg: [] as unknown[][], ours: [] as unknown[][] };
    const calls = { pg: 0, ours: 0 };
    const options = (which: "pg" | "ours") => ({
      tableName: "missing",
      pruneSessionInterval: 5,
      pruneSessionRandomizedInterval: () => ++calls[which] === 1 ? 1 : 2 ** 30,
      errorLog: (...args: unknown[]) => logs[which].push(args),
    });
    await pgGet(pgStore(options("pg")), "x").catch(() => {});
    await store(options("ours")).get("x").catch(() => {});
    await until(
      () =>
        logs.pg.length === 1 && logs.ours.length === 1 && calls.pg === 2 &&
        calls.ours === 2,
      "both prunes to fail and reschedule",
    );
    for (const [[message, error]] of [logs.pg, logs.ours]) {
      assert.equal(message, "Failed to prune sessions:");
      assert.equal((error as { code: string }).code, "42P01");
      assert.match(
        (error as Error).message,
        /relation ".*missing" does not exist/,
      );
    }
  },
);

compatTest(
  "the default randomiser spreads the delay over 50–150 % of the interval in both",
  async ({ store, pgStore }) => {
    const intervalMs = 1000; // the shortest interval allowed
    const fired = new Map<string, number>();
    const options = (name: string) => ({
      tableName: `missing_${name}`,
      pruneSessionInterval: intervalMs / 1000,
      errorLog: () => fired.has(name) || fired.set(name, Date.now()),
    });
    const random = Math.random;
    const started = Date.now();
    try {
      for (const [low, value] of [["low", 0], ["high", 1 - 1e-9]] as const) {
        Math.random = () => value;
        // The delay is drawn synchronously, at first use.
        pgGet(pgStore(options(`pg_${low}`)), "x").catch(() => {});
        store(options(`ours_${low}`)).get("x").catch(() => {});
      }
    } finally {
      Math.random = random;
    }
    await until(() => fired.size === 4, "four failed prunes", 10_000);
    const elapsed = (name: string) => fired.get(name)! - started;
    for (const who of ["pg", "ours"]) {
      assert.ok(
        elapsed(`${who}_low`) >= intervalMs / 2 - 1,
        `${who} low: ${elapsed(`${who}_low`)}`,
      );
      assert.ok(
        elapsed(`${who}_low`) < intervalMs,
        `${who} low: ${elapsed(`${who}_low`)}`,
      );
      assert.ok(
        elapsed(`${who}_high`) >= intervalMs * 1.5 - 2,
        `${who} high: ${elapsed(`${who}_high`)}`,
      );
    }
  },
);

compatTest(
  "difference: a manual pruneSessions() without a callback that fails is logged by connect-pg-simple, rejected by ours",
  async ({ store, pgStore }) => {
    const logs = { pg: [] as unknown[][], ours: [] as unknown[][] };
    const theirs = pgStore({
      tableName: "missing",
      errorLog: (...args: unknown[]) => logs.pg.push(args),
    });
    const ours = store({
      tableName: "missing",
      errorLog: (...args: unknown[]) => logs.ours.push(args),
    });
    theirs.pruneSessions();
    await assert.rejects(ours.pruneSessions(), /does not exist/);
    await until(() => logs.pg.length === 1, "connect-pg-simple's log");
    assert.equal(logs.pg[0][0], "Failed to prune sessions:");
    assert.deepEqual(logs.ours, []);
    // With a callback, both hand the error to the callback and log nothing.
    const [a, b] = [
      await viaCallback((cb) => theirs.pruneSessions(cb)),
      await viaCallback((cb) => ours.pruneSessions(cb)),
    ];
    assert.match(String(a.error), /does not exist/);
    assert.match(String(b.error), /does not exist/);
    assert.equal(logs.pg.length + logs.ours.length, 1);
  },
);
