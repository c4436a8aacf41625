/**
 * `deno task bench --users`: sessions of one user on a large table. Two
 * tables of 1,000,000 sessions of 100,000 users each (10 sessions a user),
 * one with the owner index `IDX_<table>_user`, one without; then:
 *
 * - the index build (`CREATE INDEX CONCURRENTLY`, as `migrate` runs it);
 * - `sessionsOf` and `destroyOf` through the store, one call at a time on
 *   random users, median and p99 ms, with and without the index;
 * - the plans of both statements as the store prepares them (generic plans
 *   on PostgreSQL 12+), which must be index scans;
 * - what the index costs `set` (an upsert of an existing session, as
 *   express-session saves): ops/s and database CPU per `set` on the table
 *   with the index against the one without, interleaved in one run, as
 *   ratios per repetition.
 *
 * `--quick` makes it 100,000 sessions of 10,000 users. It works in a schema
 * of its own and drops it at the end.
 *
 * @module
 */
import session from "express-session";
import postgres from "postgres";
import connectPostgresSimple from "../../mod.ts";
import { resolveTableNames } from "../../src/names.ts";
import { statements } from "../../src/queries.ts";
import { buildIndexes, tableDefinition } from "../../src/schema.ts";
import { nowSeconds } from "../../src/expiry.ts";
import {
  localServerCpu,
  measure,
  median,
  type Sample,
  type ServerCpu,
} from "./measure.ts";

/** What `--users` takes from the command line. */
export interface UsersBenchOptions {
  quick: boolean;
  /** Repetitions of the set-cost comparison. */
  reps: number;
  /** Seconds of each measured set run. */
  durationSeconds: number;
}

const USER_KEY = ["passport", "user"];
const SESSIONS_PER_USER = 10;
const CALLS = 300;
const CALLS_WITHOUT_INDEX = 10;
const SET_CONCURRENCY = 8;

const fmt = {
  int: (n: number) => Math.round(n).toLocaleString("en-US"),
  ms: (n: number) => n.toFixed(n < 10 ? 2 : 1),
  ratio: (n: number) => n.toFixed(3),
};

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/** Runs the users benchmark on the server at `url` and prints its report. */
export async function usersBench(
  url: string,
  options: UsersBenchOptions,
): Promise<void> {
  const sessions = options.quick ? 100_000 : 1_000_000;
  const users = sessions / SESSIONS_PER_USER;
  const admin = postgres(url, { max: 2, onnotice: () => {} });
  const schema = `bench_users_${Deno.pid}`;
  const indexed = resolveTableNames(schema, "indexed", () => {});
  const plain = resolveTableNames(schema, "plain", () => {});
  const Store = connectPostgresSimple(session);
  try {
    const [{ version, num }] = await admin`
      SELECT current_setting('server_version') AS version,
        current_setting('server_version_num')::int AS num`;
    console.log(
      `# sessions of one user\n\nPostgreSQL ${version}, ${Deno.build.os} ${navigator.hardwareConcurrency} CPUs; ` +
        `${fmt.int(sessions)} sessions of ${
          fmt.int(users)
        } users in each of two tables (json sess, ~230 bytes).\n`,
    );
    await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.unsafe(`CREATE SCHEMA "${schema}"`);
    for (const names of [indexed, plain]) {
      const started = performance.now();
      for (const statement of tableDefinition(names)) {
        await admin.unsafe(statement);
      }
      // 32-character ids like express-session's; users spread over the table.
      await admin.unsafe(
        `INSERT INTO ${names.qualified} (sid, sess, expire)
         SELECT md5(i::text), json_build_object(
           'cookie', json_build_object('originalMaxAge', 2592000000, 'expires', now() + interval '30 days', 'httpOnly', true, 'path', '/'),
           'passport', json_build_object('user', 'user-' || (i % ${users})),
           'csrf', substr(md5(i::text || 'csrf'), 1, 22)),
           now() + random() * interval '30 days'
         FROM generate_series(1, ${sessions}) AS i`,
      );
      console.log(
        `filled ${names.qualified} in ${
          ((performance.now() - started) / 1000).toFixed(1)
        } s`,
      );
    }
    const building = performance.now();
    await buildIndexes(admin, indexed, { userKey: USER_KEY }, { waitMs: 1 });
    console.log(
      `built ${indexed.userIndex} (CREATE INDEX CONCURRENTLY) in ${
        ((performance.now() - building) / 1000).toFixed(1)
      } s`,
    );
    for (const names of [indexed, plain]) {
      await admin.unsafe(`VACUUM ANALYZE ${names.qualified}`);
    }
    const [{ size }] = await admin.unsafe(
      `SELECT pg_size_pretty(pg_relation_size($1::regclass)) AS size`,
      [`${indexed.quotedSchema}.${indexed.userIndex}`],
    );
    console.log(`${indexed.userIndex} is ${size}\n`);

    const [{ pid }] = await admin`SELECT pg_backend_pid() AS pid`;
    const server: ServerCpu | undefined = localServerCpu(pid);

    // set with and without the index, interleaved.
    const runs: Record<"indexed" | "plain", Sample[]> = {
      indexed: [],
      plain: [],
    };
    const body = (i: number) => ({
      cookie: {
        originalMaxAge: 2592000000,
        expires: new Date(Date.now() + 30 * 86400_000).toISOString(),
        httpOnly: true,
        path: "/",
      },
      passport: { user: `user-${i % users}` },
      csrf: "p9QkX2v7n0aTqLbWfE1sYc",
    });
    const sids = (n: number) =>
      admin.unsafe(
        `SELECT md5(i::text) AS sid, i FROM (SELECT (1 + floor(random() * ${sessions}))::int AS i FROM generate_series(1, ${n})) r`,
      );
    const setIds = await sids(20_000);
    for (let rep = 0; rep < options.reps; rep++) {
      const order: ("indexed" | "plain")[] = rep % 2
        ? ["plain", "indexed"]
        : ["indexed", "plain"];
      for (const which of order) {
        const names = which === "indexed" ? indexed : plain;
        const sql = postgres(url, { max: SET_CONCURRENCY, onnotice: () => {} });
        const store = new Store({
          postgres: sql,
          schemaName: schema,
          tableName: names.table,
          pruneSessionInterval: false,
        });
        let next = 0;
        runs[which].push(
          await measure({
            op: () => {
              const { sid, i } = setIds[next++ % setIds.length];
              return store.set(sid, body(i) as never);
            },
            concurrency: SET_CONCURRENCY,
            warmupMs: 300,
            durationMs: options.durationSeconds * 1000,
            server,
          }),
        );
        await store.close();
        await sql.end();
      }
    }

    // sessionsOf and destroyOf, one call at a time.
    const timings = async (
      names: typeof indexed,
      calls: number,
      users: number[],
    ) => {
      const sql = postgres(url, { max: 2, onnotice: () => {} });
      const store = new Store({
        postgres: sql,
        schemaName: schema,
        tableName: names.table,
        userKey: USER_KEY.join("."),
        pruneSessionInterval: false,
      });
      const listed: number[] = [];
      const deleted: number[] = [];
      let found = 0;
      let removed = 0;
      // Each user once for sessionsOf, then destroyed: distinct users, so
      // every destroyOf deletes that user's sessions.
      for (const user of users.slice(0, calls)) {
        const a = performance.now();
        found += (await store.sessionsOf(`user-${user}`)).length;
        listed.push(performance.now() - a);
        const b = performance.now();
        removed += await store.destroyOf(`user-${user}`);
        deleted.push(performance.now() - b);
      }
      await store.close();
      await sql.end();
      return { listed, deleted, found, removed };
    };
    const randomUsers = (n: number) => {
      const picked = new Set<number>();
      while (picked.size < n) picked.add(Math.floor(Math.random() * users));
      return [...picked];
    };
    const withIndex = await timings(indexed, CALLS, randomUsers(CALLS));
    const withoutIndex = await timings(
      plain,
      CALLS_WITHOUT_INDEX,
      randomUsers(CALLS_WITHOUT_INDEX),
    );

    console.log(
      "| call | table | calls | median ms | p99 ms | sessions per call |",
    );
    console.log("|---|---|--:|--:|--:|--:|");
    for (
      const [name, result, label] of [
        ["sessionsOf", withIndex, "with IDX_user"],
        ["destroyOf", withIndex, "with IDX_user"],
        ["sessionsOf", withoutIndex, "without"],
        ["destroyOf", withoutIndex, "without"],
      ] as const
    ) {
      const times = name === "sessionsOf" ? result.listed : result.deleted;
      const count = name === "sessionsOf" ? result.found : result.removed;
      console.log(
        `| ${name} | ${label} | ${times.length} | ${fmt.ms(median(times))} | ${
          fmt.ms(percentile(times, 0.99))
        } | ${(count / times.length).toFixed(1)} |`,
      );
    }

    const text = statements(indexed, { userKey: USER_KEY });
    const generic = num >= 120000;
    console.log(
      `\nPlans of the store's statements (${
        generic
          ? "generic plans, as a prepared statement runs them after its fifth execution"
          : "custom plans"
      }):\n`,
    );
    for (
      const [name, query, params] of [
        ["sessionsOf", text.sessionsOf, ["'user-1'", String(nowSeconds())]],
        [
          "destroyOf",
          text.destroyOf,
          ["'user-2'", "NULL", String(nowSeconds() + 60)],
        ],
      ] as const
    ) {
      const plan = await admin.begin(async (tx) => {
        if (generic) {
          await tx.unsafe("SET LOCAL plan_cache_mode = force_generic_plan");
        }
        await tx.unsafe(`PREPARE bench_plan AS ${query}`);
        const rows = await tx.unsafe(
          `EXPLAIN EXECUTE bench_plan(${params.join(", ")})`,
        );
        await tx.unsafe("DEALLOCATE bench_plan");
        return rows.map((row) => row["QUERY PLAN"] as string);
      });
      console.log(`${name}:\n\n    ${plan.join("\n    ")}\n`);
    }

    const ops = (s: Sample) => s.opsPerSecond;
    const db = (s: Sample) => s.dbUsPerOp ?? NaN;
    const per = (pick: (s: Sample) => number) =>
      runs.indexed.map((s, i) => pick(s) / pick(runs.plain[i]));
    console.log(
      `set (upsert of an existing session) at concurrency ${SET_CONCURRENCY}, ${options.reps} interleaved repetitions of ${options.durationSeconds} s:\n`,
    );
    console.log(
      "| table | ops/s (median) | DB µs per set (median) |\n|---|--:|--:|",
    );
    for (const which of ["indexed", "plain"] as const) {
      console.log(
        `| ${which === "indexed" ? "with IDX_user" : "without"} | ${
          fmt.int(median(runs[which].map(ops)))
        } | ${server ? median(runs[which].map(db)).toFixed(1) : "n/a"} |`,
      );
    }
    const opsRatios = per(ops);
    console.log(
      `\nops/s with the index ÷ without, per repetition: ${
        opsRatios.map(fmt.ratio).join(", ")
      }; median ${fmt.ratio(median(opsRatios))}`,
    );
    if (server) {
      const dbRatios = per(db);
      console.log(
        `DB CPU per set with the index ÷ without, per repetition: ${
          dbRatios.map(fmt.ratio).join(", ")
        }; median ${fmt.ratio(median(dbRatios))}`,
      );
    }
  } finally {
    await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  }
}
