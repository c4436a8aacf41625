/**
 * The throwaway server the fault tests start (scripts/postgres/server.ts):
 * what `restart()`, `crash()` and `start()` do to clients and data, under
 * Deno and, compiled by `deno task test:npm`, under Node.
 *
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import postgres from "postgres";
import { startPostgres } from "../scripts/postgres/server.ts";

/** A connection that gives up quickly and retries at once, as a fault test wants. */
function client(url: string): postgres.Sql<Record<string, never>> {
  return postgres(url, {
    max: 1,
    onnotice: () => {},
    connect_timeout: 5,
    backoff: () => 0,
  });
}

test("the test server: crash() drops every connection at once, start() brings back every commit through crash recovery", async () => {
  const server = await startPostgres();
  const sql = client(server.url);
  try {
    await sql`CREATE TABLE "t" ("n" int)`;
    await sql`INSERT INTO "t" SELECT generate_series(1, 1000)`;
    const [{ before }] = await sql`SELECT pg_backend_pid() AS before`;

    await server.crash();
    await assert.rejects(sql`SELECT 1`, /ECONNREFUSED|CONNECTION_/);
    await server.crash(); // already down: nothing to do

    await server.start();
    const [{ after, count }] =
      await sql`SELECT pg_backend_pid() AS after, count(*)::int AS count FROM "t"`;
    assert.notEqual(after, before, "a new connection");
    assert.equal(count, 1000, "every acknowledged row survives the crash");
    await server.start(); // already up: nothing to do
    assert.match(
      readFileSync(server.logFile, "utf8"),
      /not properly shut down; automatic recovery in progress/,
    );
  } finally {
    await sql.end({ timeout: 1 });
    await server.stop();
  }
});

test("the test server: restart() is a fast shutdown that ends running queries and keeps the data; a stopped server cannot restart", async () => {
  const server = await startPostgres();
  const sql = client(server.url);
  const watcher = client(server.url);
  try {
    await sql`CREATE TABLE "t" ("n" int)`;
    await sql`INSERT INTO "t" VALUES (1)`;
    const killed = sql`SELECT pg_sleep(30) AS "slept"`.catch((error) => error);
    const deadline = Date.now() + 10_000;
    while (
      (await watcher`SELECT 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%'
        AND pid <> pg_backend_pid()`).length === 0
    ) {
      assert.ok(Date.now() < deadline, "the sleeping query shows up");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await server.restart();
    // The server ends the query with 57P01, which postgres.js may report as the
    // connection closing instead.
    assert.match((await killed).code, /^(57P01|CONNECTION_CLOSED)$/);
    assert.match(
      readFileSync(server.logFile, "utf8"),
      /received fast shutdown request/,
    );
    // Read through a new client: postgres.js 3.4.9 hands the killed query's 57P01 to
    // the next query on its reconnected connection.
    const reader = client(server.url);
    try {
      const [{ count }] = await reader`SELECT count(*)::int AS count FROM "t"`;
      assert.equal(count, 1);
    } finally {
      await reader.end({ timeout: 1 });
    }
  } finally {
    await sql.end({ timeout: 1 });
    await watcher.end({ timeout: 1 });
    await server.stop();
  }
  await assert.rejects(server.restart(), /is stopped/);
  await assert.rejects(server.start(), /is stopped/);
});
