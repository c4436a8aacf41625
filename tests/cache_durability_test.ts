/**
 * With the read cache on, writes stay as durable as without it: each one
 * commits (and the store answers) only once its WAL is written, so a crash
 * right after the answers loses nothing acknowledged. The cache's notify
 * triggers make commits costly (PostgreSQL serializes notifying commits
 * through their flushes); making them asynchronous would be the tempting
 * shortcut this test refuses.
 *
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import { startPostgres } from "../scripts/postgres/server.ts";
import {
  BUN_RESTART_DEFECT,
  PostgresStoreClass,
  sessionData,
  uniqueName,
} from "./_helpers.ts";
import { RECOMMENDED } from "./_load.ts";

test(
  "with the cache, writes acknowledged just before a crash survive it",
  { skip: BUN_RESTART_DEFECT },
  async () => {
    // The WAL writer waits 10 s between rounds: a write committed without
    // waiting for its flush would still be in shared memory at the crash.
    const server = await startPostgres({
      settings: { wal_writer_delay: "10000ms" },
    });
    const sql = postgres(server.url, { ...RECOMMENDED, max: 4 });
    const table = uniqueName("durable");
    const store = new PostgresStoreClass({
      postgres: sql,
      tableName: table,
      createTableIfMissing: true,
      pruneSessionInterval: false,
      cache: true,
      errorLog: () => {},
    });
    const check = () => postgres(server.url, { ...RECOMMENDED, max: 1 });
    try {
      await store.set("gone", sessionData());
      const ids = Array.from({ length: 40 }, (_, i) => `durable-${i}`);
      await Promise.all(ids.map((id) => store.set(id, sessionData())));
      await store.set("durable-0", sessionData({ version: 2 }));
      await store.destroy("gone");

      await server.crash();
      await server.start();

      const after = check();
      try {
        const rows = await after.unsafe(
          `SELECT sid, sess->>'version' AS version FROM "${table}" ORDER BY sid`,
        );
        assert.deepEqual(
          rows.map((row) => row.sid).sort(),
          [...ids].sort(),
          "every acknowledged set is there, the destroyed session is not",
        );
        assert.equal(
          rows.find((row) => row.sid === "durable-0")?.version,
          "2",
          "the acknowledged update is there",
        );
      } finally {
        await after.end({ timeout: 1 });
      }
    } finally {
      await store.close();
      await sql.end({ timeout: 1 });
      await server.stop();
    }
  },
);
