/**
 * A write reported failed never lands afterwards. Each test makes a write
 * wait behind a connection that a lock holds up, lets its call fail with
 * CALL_TIMEOUT, lets another store write the same session and be
 * acknowledged, then releases the lock so the delayed statement finally
 * reaches the database: it must change nothing.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  connect,
  type PostgresSql,
  sessionData,
  storeTest,
  type TestBed,
} from "./_helpers.ts";

/**
 * A store whose only connection is busy on a query that waits for a lock
 * the test holds, so its next statements queue behind it; `release()` lets
 * everything through and resolves once the queue has drained.
 */
async function heldUpStore(bed: TestBed) {
  const blocker = `"${bed.schema}"."blocker"`;
  await bed.sql.unsafe(`CREATE TABLE ${blocker} (n int)`);
  const appSql = connect({ max: 1 });
  const store = bed.store({ postgres: appSql, callTimeout: 0.5 });
  // The store has written before: it knows the server's clock.
  await store.set("warm-up", sessionData());

  const holder = connect({ max: 1 });
  let unlock = () => {};
  const unlocked = new Promise<void>((resolve) => unlock = resolve);
  const locked = holder.begin(async (tx) => {
    await tx.unsafe(`LOCK TABLE ${blocker} IN ACCESS EXCLUSIVE MODE`);
    await unlocked;
  });
  let busy: Promise<unknown> = Promise.resolve();
  const release = async (): Promise<void> => {
    unlock();
    await locked;
    await busy;
    // One more round trip on the same connection: whatever was queued
    // behind the blocked query has been executed by now. (With a parameter:
    // behind PgBouncer, postgres.js 3.4.9 can lose a simple query sent
    // after a failed one.)
    await appSql.unsafe("SELECT $1::int", [1]);
    await holder.end();
    await appSql.end();
  };
  try {
    await waitForLock(bed.sql, blocker);
    busy = appSql.unsafe(`SELECT count(*) FROM ${blocker} WHERE $1`, [true])
      .execute();
    await waitForWaiter(bed.sql, blocker);
  } catch (error) {
    await release();
    throw error;
  }

  return { store, release };
}

async function waitForLock(sql: PostgresSql, table: string): Promise<void> {
  await until(async () => {
    const [{ held }] = await sql.unsafe(
      `SELECT count(*)::int AS held FROM pg_locks
       WHERE relation = to_regclass($1) AND mode = 'AccessExclusiveLock' AND granted`,
      [table],
    );
    return held > 0;
  }, "the test holds the lock");
}

async function waitForWaiter(sql: PostgresSql, table: string): Promise<void> {
  await until(async () => {
    const [{ waiting }] = await sql.unsafe(
      `SELECT count(*)::int AS waiting FROM pg_locks
       WHERE relation = to_regclass($1) AND NOT granted`,
      [table],
    );
    return waiting > 0;
  }, "the store's connection waits for the lock");
}

async function until(
  condition: () => Promise<boolean>,
  what: string,
): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

storeTest(
  "a set that timed out never overwrites a later acknowledged set",
  async (bed) => {
    const other = bed.store();
    await other.set("sid", sessionData({ v: 0 }));
    const { store, release } = await heldUpStore(bed);
    try {
      await assert.rejects(store.set("sid", sessionData({ v: 1 })), {
        code: "CALL_TIMEOUT",
      });
      await other.set("sid", sessionData({ v: 2 })); // the app's retry, acknowledged
    } finally {
      await release();
    }

    assert.equal((await other.get("sid") as unknown as { v: number }).v, 2);
  },
);

storeTest(
  "a set that timed out never revives a session destroyed afterwards",
  async (bed) => {
    const other = bed.store();
    await other.set("sid", sessionData({ user: "ada" }));
    const { store, release } = await heldUpStore(bed);
    try {
      await assert.rejects(store.set("sid", sessionData({ user: "ada" })), {
        code: "CALL_TIMEOUT",
      });
      await other.destroy("sid"); // logout, acknowledged
    } finally {
      await release();
    }

    assert.equal(await other.get("sid"), null);
    assert.equal(await bed.row("sid"), undefined);
  },
);

storeTest(
  "touch and destroy that timed out never apply afterwards",
  async (bed) => {
    const other = bed.store();
    await other.set("touched", sessionData({}, 60));
    const before = await bed.row("touched");
    const { store, release } = await heldUpStore(bed);
    try {
      await assert.rejects(store.touch("touched", sessionData({}, 7200)), {
        code: "CALL_TIMEOUT",
      });
      await assert.rejects(store.destroy("touched"), { code: "CALL_TIMEOUT" });
    } finally {
      await release();
    }

    assert.deepEqual(await bed.row("touched"), before);
  },
);
