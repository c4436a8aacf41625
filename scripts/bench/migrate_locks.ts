/**
 * Measures `connect-postgres-simple migrate` on a large table in use: a
 * table of `--rows` sessions (default 1,000,000), served meanwhile by the
 * store (get then set on random sessions, `--concurrency` loops, default
 * 4); each step run on its own, as `migrate` runs it.
 *
 * For each step it reports how long the step took, the table locks the
 * migrating connection was seen holding (sampled every 20 ms from
 * `pg_locks`), and what the app saw meanwhile: calls made, the longest
 * one, and calls failed. `--timestamptz` is measured twice, on two tables:
 * with the connection's TimeZone UTC (PostgreSQL 12+ then skips the
 * rewrite) and Europe/Paris (a rewrite).
 *
 * ```sh
 * deno run -A scripts/postgres/with_postgres.ts deno run -A scripts/bench/migrate_locks.ts
 * EMBEDDED_PG_VERSION=10 deno run -A scripts/postgres/with_postgres.ts deno run -A scripts/bench/migrate_locks.ts --rows 200000
 * ```
 *
 * It works in a schema of its own and drops it at the end.
 *
 * @module
 */
import process from "node:process";
import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import postgres from "postgres";
import session from "express-session";
import connectPostgresSimple from "../../mod.ts";
import { resolveTableNames, type TableNames } from "../../src/names.ts";
import {
  type DoneStep,
  migrateTable,
  tableDefinition,
  type TableFeatures,
} from "../../src/schema.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    rows: { type: "string", default: "1000000" },
    concurrency: { type: "string", default: "4" },
  },
});
const rows = Number(values.rows);
const concurrency = Number(values.concurrency);
const url = process.env.DATABASE_URL;
if (!url) throw new Error("set DATABASE_URL");

const admin = postgres(url, { max: 2, onnotice: () => {} });
const schema = `migrate_bench_${process.pid}`;
const Store = connectPostgresSimple(session);
const APP_NAME = "cps-migrate-bench";

async function fill(names: TableNames): Promise<number> {
  const started = performance.now();
  for (const statement of tableDefinition(names)) {
    await admin.unsafe(statement);
  }
  await admin.unsafe(
    `INSERT INTO ${names.qualified} (sid, sess, expire)
     SELECT md5(i::text), json_build_object(
       'cookie', json_build_object('originalMaxAge', 2592000000, 'expires', now() + interval '30 days', 'httpOnly', true, 'path', '/'),
       'passport', json_build_object('user', 'user-' || (i % ${rows / 10})),
       'csrf', substr(md5(i::text || 'csrf'), 1, 22)),
       now() + random() * interval '30 days'
     FROM generate_series(1, ${rows}) AS i`,
  );
  await admin.unsafe(`VACUUM ANALYZE ${names.qualified}`);
  return (performance.now() - started) / 1000;
}

/** The app: get then set on random sessions, in closed loops, until stopped. */
function serve(names: TableNames) {
  const sql = postgres(url!, { max: concurrency, onnotice: () => {} });
  const store = new Store({
    postgres: sql,
    schemaName: schema,
    tableName: names.table,
    pruneSessionInterval: false,
  });
  const calls: { at: number; ms: number; failed: boolean }[] = [];
  let running = true;
  const loop = async () => {
    while (running) {
      const sid = sidOf(Math.floor(Math.random() * rows) + 1);
      for (const call of [() => store.get(sid), () => store.set(sid, body)]) {
        const at = performance.now();
        let failed = false;
        try {
          await call();
        } catch {
          failed = true;
        }
        calls.push({ at, ms: performance.now() - at, failed });
      }
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  return {
    calls,
    async stop() {
      running = false;
      await Promise.all(loops);
      await store.close();
      await sql.end();
    },
  };
}

const body = {
  cookie: {
    originalMaxAge: 2592000000,
    expires: new Date(Date.now() + 30 * 86400_000).toISOString(),
    httpOnly: true,
    path: "/",
  },
  passport: { user: "user-1" },
} as never;

function sidOf(i: number): string {
  return createHash("md5").update(String(i)).digest("hex");
}

/** Samples the table locks the migrating connections hold, with the time of each sample. */
function watchLocks(names: TableNames) {
  const samples: { at: number; modes: string[] }[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const at = performance.now();
      const found = await admin.unsafe(
        `SELECT DISTINCT l.mode FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE a.application_name = $1 AND l.granted AND l.locktype = 'relation'
           AND l.relation = to_regclass($2::text)`,
        [APP_NAME, names.qualified],
      );
      samples.push({ at, modes: found.map((row) => row.mode as string) });
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return {
    /** The modes seen between `from` and `to`. */
    between(from: number, to: number): string[] {
      const modes = new Set<string>();
      for (const sample of samples) {
        if (sample.at >= from && sample.at <= to) {
          for (const mode of sample.modes) modes.add(mode);
        }
      }
      return [...modes].sort();
    },
    async stop() {
      running = false;
      await done;
    },
  };
}

interface Row {
  step: string;
  seconds: number;
  locks: string[];
  calls: number;
  longestMs: number;
  failed: number;
}

async function measureStep(
  names: TableNames,
  features: TableFeatures,
  label: string,
  timeZone = "UTC",
): Promise<Row[]> {
  const app = serve(names);
  // Let the app warm up before the step.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const sql = postgres(url!, {
    max: 2,
    onnotice: () => {},
    connection: { application_name: APP_NAME, TimeZone: timeZone },
  });
  const locks = watchLocks(names);
  const results: Row[] = [];
  try {
    const windows: { step: DoneStep; from: number; to: number }[] = [];
    const done = await migrateTable(
      sql,
      names,
      features,
      performance.now() + 600_000,
    );
    // Each step's time is from its first statement to its commit; the last
    // one ends now, and each began when the one before it ended.
    let end = performance.now();
    for (const step of [...done].reverse()) {
      windows.unshift({ step, from: end - step.seconds * 1000, to: end });
      end -= step.seconds * 1000;
    }
    await locks.stop();
    for (const { step, from, to } of windows) {
      const during = app.calls.filter((c) => c.at + c.ms >= from && c.at <= to);
      results.push({
        step: `${label}: ${step.what}`,
        seconds: step.seconds,
        locks: locks.between(from, to),
        calls: during.length,
        longestMs: Math.max(0, ...during.map((c) => c.ms)),
        failed: during.filter((c) => c.failed).length,
      });
    }
  } finally {
    await locks.stop().catch(() => {});
    await app.stop();
    await sql.end();
  }
  return results;
}

try {
  await admin.unsafe(`CREATE SCHEMA "${schema}"`);
  const [{ version }] =
    await admin`SELECT current_setting('server_version') AS version`;
  const main = resolveTableNames(schema, "session", () => {});
  const paris = resolveTableNames(schema, "paris", () => {});
  console.log(
    `PostgreSQL ${version}; ${
      rows.toLocaleString("en-US")
    } sessions per table, filled in ${(await fill(main)).toFixed(1)} s and ${
      (await fill(paris)).toFixed(1)
    } s; the app: ${concurrency} loops of get + set.\n`,
  );
  const all: Row[] = [
    ...await measureStep(main, { timestamptz: true }, "--timestamptz (UTC)"),
    ...await measureStep(
      paris,
      { timestamptz: true },
      "--timestamptz (Europe/Paris)",
      "Europe/Paris",
    ),
    ...await measureStep(main, { created: true }, "--created"),
    ...await measureStep(
      main,
      { userKey: ["passport", "user"] },
      "--user-key",
    ),
  ];
  console.log(
    "| step | took (s) | table locks seen on the migrating connections | app calls during it | longest app call (ms) | failed |",
  );
  console.log("|---|--:|---|--:|--:|--:|");
  for (const row of all) {
    console.log(
      `| ${row.step} | ${row.seconds.toFixed(2)} | ${
        row.locks.join(", ")
      } | ${row.calls} | ${row.longestMs.toFixed(0)} | ${row.failed} |`,
    );
  }
} finally {
  await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
}
