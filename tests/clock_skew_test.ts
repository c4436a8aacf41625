/**
 * An app whose wall clock is wrong or jumps, in a child process
 * (`_clock_child.ts`): call time limits follow the monotonic clock, a prune
 * never deletes what the database's clock still considers live, and an
 * `errorLog` that throws does not take the process down.
 *
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { runScript, sibling } from "./_spawn.ts";
import { nowSeconds, storeTest } from "./_helpers.ts";

const CHILD = sibling("./_clock_child", import.meta.url);
const HOUR_MS = 3_600_000;

/** Runs the child in `mode` and parses the JSON line it prints. */
async function child(args: string[]): Promise<Record<string, unknown>> {
  const result = await runScript(CHILD, args, { timeoutMs: 60_000 });
  assert.equal(
    result.code,
    0,
    `child ${args.join(" ")} exited ${result.code}: ${result.stderr}`,
  );
  const line = result.stdout.trim().split("\n").at(-1) ?? "";
  return JSON.parse(line);
}

for (const [name, skew] of [["back", -HOUR_MS], ["forward", HOUR_MS]]) {
  test(`callTimeout holds when the wall clock steps an hour ${name}`, async () => {
    const { calls } = await child(["deadline", String(skew)]) as {
      calls: { code: string; ms: number }[];
    };
    assert.equal(calls.length, 2);
    for (const [i, { code, ms }] of calls.entries()) {
      assert.equal(code, "CALL_TIMEOUT", `call ${i + 1}`);
      // Not cut short by a step forward; not stretched by a step back (the
      // bound leaves room for a busy machine, far below an hour).
      assert.ok(ms >= 495, `call ${i + 1} ended after ${ms} ms, before 0.5 s`);
      assert.ok(ms < 2_500, `call ${i + 1} ended after ${ms} ms`);
    }
  });
}

storeTest(
  "an app whose clock runs two hours fast prunes only what the database's clock has expired",
  async ({ schema, fill, sql, table }) => {
    await fill("live", 200, 3600); // the other instances' sessions, live for an hour
    await fill("expired", 50, -60);
    const { deleted } = await child(["prune", schema, String(2 * HOUR_MS)]);
    assert.equal(deleted, 50);
    const [{ live, expired }] = await sql.unsafe(
      `SELECT count(*) FILTER (WHERE sid LIKE 'live-%')::int AS live,
              count(*) FILTER (WHERE sid LIKE 'expired-%')::int AS expired
       FROM ${table}`,
    );
    assert.deepEqual({ live, expired }, { live: 200, expired: 0 });
  },
);

storeTest(
  "an app whose clock runs two hours slow still prunes what has expired by its own clock",
  async ({ schema, insert, row }) => {
    await insert("long-expired", "{}", nowSeconds() - 3 * 3600);
    await insert("live", "{}", nowSeconds() + 60);
    const { deleted } = await child(["prune", schema, String(-2 * HOUR_MS)]);
    assert.equal(deleted, 1);
    assert.equal(await row("long-expired"), undefined);
    assert.notEqual(await row("live"), undefined);
  },
);

storeTest(
  "an errorLog that throws never crashes the app, and pruning goes on",
  async ({ schema }) => {
    const { calls } = await child(["errorlog", schema]);
    assert.equal(calls, 3);
  },
);
