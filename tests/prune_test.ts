import assert from "node:assert/strict";
import { nowSeconds, sessionData, storeTest, viaCallback } from "./_helpers.ts";

/** A randomiser that records each scheduling and lets a test wait for the n-th one. */
function scheduleSpy(
  delayMs: (interval: number) => number = (interval) => interval,
) {
  const calls: number[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  return {
    calls,
    randomizer(interval: number): number {
      calls.push(interval);
      for (const w of waiters.filter((w) => calls.length >= w.n)) w.resolve();
      return delayMs(interval);
    },
    /** Resolves once the prune chain has been scheduled `n` times. */
    scheduled(n: number): Promise<void> {
      if (calls.length >= n) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ n, resolve }));
    },
  };
}

storeTest(
  "pruneSessions deletes exactly the expired rows and counts them",
  async ({ store, insert, row }) => {
    const now = nowSeconds();
    await insert("live", "{}", now + 60);
    await insert("edge", "{}", now + 1);
    await insert("old-1", "{}", now - 1);
    await insert("old-2", "{}", now - 86400);
    const s = store();
    assert.equal(await s.pruneSessions(), 2);
    assert.ok(await row("live"));
    assert.ok(await row("edge"));
    assert.equal(await row("old-1"), undefined);
    assert.equal(await row("old-2"), undefined);
  },
);

storeTest(
  "pruneSessions with a callback reports the count",
  async ({ store, insert }) => {
    await insert("old", "{}", nowSeconds() - 5);
    const s = store();
    assert.deepEqual(await viaCallback<number>((cb) => s.pruneSessions(cb)), {
      error: null,
      result: 1,
      calls: 1,
    });
  },
);

storeTest(
  "a backlog larger than one batch is pruned entirely",
  async ({ store, fill }) => {
    await fill("old", 2500, -3600);
    await fill("live", 10, 3600);
    const s = store();
    assert.equal(await s.pruneSessions(), 2500);
    assert.equal(await s.length(), 10);
  },
);

storeTest(
  "automatic pruning starts on first use, not at construction",
  async ({ store, insert, row }) => {
    const spy = scheduleSpy();
    const s = store({
      pruneSessionInterval: 1,
      pruneSessionRandomizedInterval: spy.randomizer,
    });
    await insert("old", "{}", nowSeconds() - 5);
    assert.equal(spy.calls.length, 0, "nothing scheduled by the constructor");
    await s.get("anything");
    assert.deepEqual(
      spy.calls,
      [1000],
      "the randomiser gets the interval in milliseconds",
    );
    await spy.scheduled(2); // the chain reschedules once the prune has finished
    assert.equal(await row("old"), undefined);
  },
);

storeTest("a manual prune restarts the timer chain", async ({ store }) => {
  const spy = scheduleSpy(() => 3_600_000);
  const s = store({
    pruneSessionInterval: 3600,
    pruneSessionRandomizedInterval: spy.randomizer,
  });
  await s.get("x");
  assert.equal(spy.calls.length, 1);
  await s.pruneSessions();
  assert.equal(spy.calls.length, 2);
});

storeTest(
  "pruneSessionInterval: false never schedules a prune",
  async ({ store }) => {
    const spy = scheduleSpy();
    const s = store({
      pruneSessionInterval: false,
      pruneSessionRandomizedInterval: spy.randomizer,
    });
    await s.set("x", sessionData());
    await s.get("x");
    await s.pruneSessions();
    assert.equal(spy.calls.length, 0);
  },
);

storeTest(
  "a failed automatic prune goes to errorLog and the chain goes on",
  async ({ store, sql, table }) => {
    const spy = scheduleSpy(() => 1);
    const logged: unknown[][] = [];
    let failures!: () => void;
    const failed = new Promise<void>((resolve) => failures = resolve);
    const s = store({
      pruneSessionInterval: 1,
      pruneSessionRandomizedInterval: spy.randomizer,
      errorLog: (...args: unknown[]) => {
        logged.push(args);
        failures();
      },
    });
    await s.get("x");
    await spy.scheduled(2); // at least one prune succeeded
    await sql.unsafe(`DROP TABLE ${table}`);
    await failed;
    const before = spy.calls.length;
    await spy.scheduled(before + 1);
    assert.equal(logged[0][0], "Failed to prune sessions:");
    assert.match(String((logged[0][1] as Error).message), /does not exist/);
  },
);

storeTest(
  "close waits for a prune in flight and stops the chain",
  async ({ store, fill }) => {
    await fill("old", 3000, -3600);
    const spy = scheduleSpy(() => 3_600_000);
    const s = store({
      pruneSessionInterval: 3600,
      pruneSessionRandomizedInterval: spy.randomizer,
    });
    let settled = false;
    const pruning = s.pruneSessions().then(
      () => settled = true,
      () => settled = true,
    );
    await s.close();
    assert.equal(settled, true, "close resolved only after the prune ended");
    await pruning;
    assert.equal(spy.calls.length, 0, "nothing scheduled after close");
    await assert.rejects(s.pruneSessions(), /store is closed/);
  },
);
