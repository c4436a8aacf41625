/**
 * Measures pruning a large backlog: a table of `--rows` sessions (default
 * 1,000,000) of which `--expired` (default 100,000) are expired, scattered
 * through the table as sessions from many days would be.
 *
 * For each batch size in `--sizes` it restores the backlog and prunes it with
 * the store's own batch statement, timing every batch transaction (BEGIN,
 * prune lock, DELETE, COMMIT, as seen by the client) and the WAL written.
 * Then it restores the backlog once more and times `store.pruneSessions()`,
 * which uses `PRUNE_BATCH_SIZE`.
 *
 * ```sh
 * DATABASE_URL=postgres://... deno run -A scripts/bench/prune_backlog.ts
 * deno run -A scripts/postgres/with_postgres.ts deno run -A scripts/bench/prune_backlog.ts --rows 200000 --expired 20000
 * ```
 *
 * It works in a schema of its own and drops it at the end.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import postgres from "postgres";
import session from "express-session";
import connectPostgresSimple from "../../mod.ts";
import { createQueries } from "../../src/queries.ts";
import { tableDefinition } from "../../src/schema.ts";
import { resolveTableNames } from "../../src/names.ts";
import { PRUNE_BATCH_SIZE } from "../../src/pruner.ts";
import { nowSeconds } from "../../src/expiry.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    rows: { type: "string", default: "1000000" },
    expired: { type: "string", default: "100000" },
    sizes: { type: "string", default: "500,1000,2500,5000,10000" },
  },
});
const rows = Number(values.rows);
const expired = Number(values.expired);
const sizes = values.sizes.split(",").map(Number);
const every = Math.round(rows / expired);

const url = process.env.DATABASE_URL;
if (!url) throw new Error("set DATABASE_URL");
const sql = postgres(url, { onnotice: () => {}, max: 2 });
const schema = `prune_bench_${process.pid}`;
const names = resolveTableNames(schema, "session", () => {});
const t = names.qualified;
const queries = createQueries({ sql }, names);

/** A session row's JSON: about 200 bytes, like a signed-in user's session. */
const SESS = JSON.stringify({
  cookie: {
    originalMaxAge: 2592000000,
    expires: "2031-01-01T00:00:00.000Z",
    httpOnly: true,
    path: "/",
  },
  user: { id: 12345, name: "Ada Lovelace", roles: ["reader", "writer"] },
  csrf: "p9QkX2v7n0aTqLbWfE1sYc",
});

async function walBytes<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const [{ lsn: before }] = await sql`SELECT pg_current_wal_lsn() AS lsn`;
  const result = await fn();
  const [{ bytes }] = await sql`
    SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), ${before})::float8 AS bytes`;
  return [result, bytes];
}

/** Puts back the expired rows: every `every`-th session, expired within the last day. */
async function restoreBacklog(): Promise<void> {
  await sql.unsafe(
    `INSERT INTO ${t} (sid, sess, expire)
    SELECT 'sid-' || i, $1::text::json, now() - random() * interval '1 day'
    FROM generate_series(1, ${rows}) AS i WHERE i % ${every} = 0
    ON CONFLICT (sid) DO UPDATE SET expire = excluded.expire`,
    [SESS],
  );
  await sql.unsafe(`VACUUM ANALYZE ${t}`);
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const ms = (millis: number) => `${millis.toFixed(1)} ms`;

try {
  await sql.unsafe(`CREATE SCHEMA ${names.quotedSchema}`);
  for (const statement of tableDefinition(names)) await sql.unsafe(statement);
  const filling = Date.now();
  await sql.unsafe(
    `INSERT INTO ${t} (sid, sess, expire)
    SELECT 'sid-' || i, $1::text::json, now() + random() * interval '30 days'
    FROM generate_series(1, ${rows}) AS i WHERE i % ${every} <> 0`,
    [SESS],
  );
  await restoreBacklog();
  console.log(
    `${rows} sessions, ${expired} expired; filled in ${
      ((Date.now() - filling) / 1000).toFixed(1)
    } s`,
  );
  console.log("batch size | batches | longest batch | median | total | WAL");
  for (const size of sizes) {
    await restoreBacklog();
    const times: number[] = [];
    const [, wal] = await walBytes(async () => {
      const now = nowSeconds();
      for (;;) {
        const started = performance.now();
        const count = await queries.pruneBatch(now, size, Infinity, Infinity);
        times.push(performance.now() - started);
        if (count === null) throw new Error("prune lock held elsewhere");
        if (count < size) break;
      }
    });
    const total = times.reduce((a, b) => a + b, 0);
    const sorted = [...times].sort((a, b) => a - b);
    console.log(
      `${size} | ${times.length} | ${ms(sorted.at(-1)!)} | ${
        ms(sorted[sorted.length >> 1])
      } | ${ms(total)} | ${mb(wal)}`,
    );
  }

  await restoreBacklog();
  const Store = connectPostgresSimple(session);
  const store = new Store({
    postgres: sql,
    schemaName: schema,
    pruneSessionInterval: false,
  });
  const started = performance.now();
  const [deleted, wal] = await walBytes(() => store.pruneSessions());
  console.log(
    `store.pruneSessions() with PRUNE_BATCH_SIZE ${PRUNE_BATCH_SIZE}: deleted ${deleted} in ${
      ms(performance.now() - started)
    }, WAL ${mb(wal)}`,
  );
  await store.close();
} finally {
  await sql.unsafe(`DROP SCHEMA IF EXISTS ${names.quotedSchema} CASCADE`);
  await sql.end();
}
