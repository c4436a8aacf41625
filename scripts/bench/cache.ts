/**
 * The read cache's benchmark: an express-session request (get, then touch,
 * or set one time in ten) with `touchAfter: 60`, on this store without and
 * with `cache`, with `synchronous_commit = off`, on connect-pg-simple 10,
 * and on connect-redis 10 with a local Redis; then statements per request,
 * the invalidation delay across two processes, and the memory of a full
 * cache.
 *
 * ```sh
 * deno task bench:cache            # about 3 minutes
 * deno task bench:cache --quick    # a smoke run
 * ```
 *
 * The task starts PostgreSQL with `fsync=on` and `full_page_writes=on`
 * (durable, as in production; the test server runs without them) and
 * `pg_stat_statements` loaded; Redis (the system's `redis-server`, skipped
 * with a message when missing) persists with `appendfsync everysec`.
 *
 * Flags (also `BENCH_<NAME>`): `--duration` measured seconds per run (1.5),
 * `--warmup` (0.3), `--reps` (3), `--concurrency` (1,32), `--requests` per
 * statement count (20000), `--delays` invalidation samples (300).
 *
 * The cache starts warm: before each run every session is read once, as in
 * an app that has been up for a while (a cold cache costs one read per
 * session, then nothing until it changes).
 *
 * @module
 */
import process from "node:process";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import postgres from "postgres";
import session from "express-session";
import connectPostgresSimple from "../../mod.ts";
import { alterTable } from "../../src/schema.ts";
import { resolveTableNames } from "../../src/names.ts";
import {
  fmt,
  localServerCpu,
  measure,
  median,
  processCpu,
  type Sample,
  type ServerCpu,
  spread,
} from "./measure.ts";
import {
  fillSessionTable,
  makeSessions,
  type OpenSubject,
  openSubject,
  SESSION_COUNT,
  type SessionSet,
  type SubjectKind,
  WORKLOADS,
} from "./subjects.ts";
import {
  fillRedis,
  openRedisSubject,
  type RedisServer,
  startRedis,
} from "./redis.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    duration: { type: "string" },
    warmup: { type: "string" },
    reps: { type: "string" },
    concurrency: { type: "string" },
    requests: { type: "string" },
    delays: { type: "string" },
  },
});

function setting(name: keyof typeof args.values, full: string, quick: string) {
  const env = process.env[`BENCH_${name.toUpperCase()}`];
  const value = args.values[name] ?? env ?? (args.values.quick ? quick : full);
  return String(value);
}

const config = {
  durationMs: Number(setting("duration", "1.5", "0.4")) * 1000,
  warmupMs: Number(setting("warmup", "0.3", "0.1")) * 1000,
  reps: Number(setting("reps", "3", "1")),
  concurrency: setting("concurrency", "1,32", "1,32").split(",").map(Number),
  requests: Number(setting("requests", "20000", "4000")),
  delays: Number(setting("delays", "300", "50")),
};

const url = process.env.DATABASE_URL;
if (!url) {
  console.error(
    "bench: DATABASE_URL is not set; run `deno task bench:cache`, which starts a throwaway PostgreSQL",
  );
  Deno.exit(2);
}

type Role =
  | "store"
  | "store + cache"
  | "store + cache, sync off"
  | "store, sync off"
  | "connect-pg-simple"
  | "connect-redis";

const KINDS: Record<Role, SubjectKind | "connect-redis"> = {
  "store": "store, touchAfter 60",
  "store + cache": "store, touchAfter 60, cache",
  "store + cache, sync off":
    "store, touchAfter 60, cache, synchronous_commit off",
  "store, sync off": "store, touchAfter 60, synchronous_commit off",
  "connect-pg-simple": "connect-pg-simple",
  "connect-redis": "connect-redis",
};

const admin = postgres(url, { max: 1, onnotice: () => {} });
/** The table of the stores with `cache`, with the notify triggers. */
const schema = `bench_cache_${process.pid}`;
/**
 * The table of the others, without them: a store without `cache` does not
 * need them, and they cost every write (see docs/cache.md on NOTIFY).
 */
const plainSchema = `bench_plain_${process.pid}`;
const schemaOf = (role: Role) => role.includes("cache") ? schema : plainSchema;
const mix = WORKLOADS["request mix"];

async function setUp(sessions: SessionSet): Promise<ServerCpu | undefined> {
  for (const name of [schema, plainSchema]) {
    await fillTable(name, sessions);
  }
  await alterTable(
    admin,
    resolveTableNames(schema, "session", () => {}),
    { notify: true },
    Infinity,
  );
  const [{ pid }] = await admin`SELECT pg_backend_pid() AS pid`;
  return localServerCpu(pid);
}

function fillTable(name: string, sessions: SessionSet): Promise<void> {
  return fillSessionTable(admin, name, sessions);
}

async function open(role: Role, redis: RedisServer | undefined) {
  const kind = KINDS[role];
  if (kind === "connect-redis") return await openRedisSubject(redis!.url);
  return await openSubject(kind, url!, schemaOf(role));
}

/**
 * Gives every session of both tables the expiry of a session just written,
 * so that within a run a touch writes only when its session was set
 * (`fresh()` moves an expiry one second a write): the mix measures sessions
 * seen more often than once a minute. A session seen every T seconds adds
 * T/60 of a write per request with touchAfter 60 (docs/cache.md).
 */
async function rebase(sessions: SessionSet): Promise<void> {
  const at = sessions.rebase();
  for (const name of [schema, plainSchema]) {
    await admin.unsafe(
      `UPDATE "${name}"."session" SET expire = to_timestamp($1::float8)`,
      [at],
    );
  }
}

/** Reads every session once, 32 at a time: a warm cache. */
async function warm(subject: OpenSubject, sessions: SessionSet) {
  for (let i = 0; i < sessions.sids.length; i += 32) {
    await Promise.all(
      sessions.sids.slice(i, i + 32).map((sid) => subject.get(sid)),
    );
  }
}

async function runOne(
  role: Role,
  concurrency: number,
  sessions: SessionSet,
  servers: { pg: ServerCpu | undefined; redis: ServerCpu | undefined },
  redis: RedisServer | undefined,
): Promise<Sample> {
  if (role !== "connect-redis") await rebase(sessions);
  const subject = await open(role, redis);
  try {
    if (role.includes("cache")) await warm(subject, sessions);
    return await measure({
      op: () => mix(subject, sessions, (Math.random() * SESSION_COUNT) | 0),
      concurrency,
      warmupMs: config.warmupMs,
      durationMs: config.durationMs,
      server: role === "connect-redis" ? servers.redis : servers.pg,
    });
  } finally {
    await subject.close();
  }
}

/**
 * Statements per request from pg_stat_statements: `requests` requests at
 * concurrency 32 after a warm-up, counted from a reset. `undefined` when
 * the extension is not loaded.
 */
async function statementsPerRequest(
  role: Role,
  sessions: SessionSet,
): Promise<{ perRequest: number; top: string[] } | undefined> {
  await rebase(sessions);
  const subject = await open(role, undefined);
  try {
    if (role.includes("cache")) await warm(subject, sessions);
    await Promise.all(
      Array.from({ length: 32 }, () => mix(subject, sessions, 0)),
    );
    await admin`SELECT pg_stat_statements_reset()`;
    let left = config.requests;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (left-- > 0) {
        await mix(subject, sessions, (Math.random() * SESSION_COUNT) | 0);
      }
    }));
    const rows = await admin.unsafe(
      `SELECT calls::int8::float8 AS calls, left(regexp_replace(query, '\\s+', ' ', 'g'), 60) AS query
       FROM pg_stat_statements
       WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
         AND query NOT ILIKE '%pg_stat_statements%'
       ORDER BY calls DESC`,
    );
    const total = rows.reduce((sum, row) => sum + row.calls, 0);
    return {
      perRequest: total / config.requests,
      top: rows.slice(0, 4).map((row) =>
        `${(row.calls / config.requests).toFixed(3)} × ${row.query}`
      ),
    };
  } finally {
    await subject.close();
  }
}

/** Milliseconds from a write acknowledged in this process to another process reading it. */
async function invalidationDelays(
  sessions: SessionSet,
): Promise<{ afterAck: number[]; afterSend: number[] }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./invalidation_child.ts", import.meta.url).pathname,
      schema,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  const lines = child.stdout.pipeThrough(new TextDecoderStream())
    .pipeThrough(lineSplitter()).getReader();
  const next = async () => (await lines.read()).value ?? "";
  const send = (line: string) =>
    writer.write(new TextEncoder().encode(`${line}\n`));
  const store = new (connectPostgresSimple(session))({
    schemaName: schema,
    pruneSessionInterval: false,
    cache: true,
  });
  const wall = () => performance.timeOrigin + performance.now();
  const afterAck: number[] = [];
  const afterSend: number[] = [];
  try {
    if (await next() !== "ready") throw new Error("the reader did not start");
    await store.get(sessions.sids[0]);
    for (let i = 0; i < config.delays; i++) {
      const index = i % 100;
      const sid = sessions.sids[index];
      await send(`prime ${sid}`);
      await next();
      const v = 1_000_000 + i;
      await send(`watch ${sid} ${v}`);
      await next();
      const sent = wall();
      await store.set(sid, { ...sessions.fresh(index), v } as never);
      const acknowledged = wall();
      const seen = Number((await next()).split(" ")[1]);
      afterAck.push(seen - acknowledged);
      afterSend.push(seen - sent);
    }
  } finally {
    await send("quit");
    await writer.close();
    await child.status;
    await store.close();
  }
  return { afterAck, afterSend };
}

function lineSplitter(): TransformStream<string, string> {
  let buffer = "";
  return new TransformStream({
    transform(chunk, controller) {
      buffer += chunk;
      const parts = buffer.split("\n");
      buffer = parts.pop()!;
      for (const part of parts) controller.enqueue(part);
    },
  });
}

/**
 * What the notify triggers cost writers: 32 clients updating sessions of
 * the table with the triggers and of the one without, for 2 s each, with
 * `synchronous_commit` on and off. PostgreSQL serializes notifying commits.
 */
async function notifyCost(sessions: SessionSet): Promise<string[]> {
  const lines: string[] = [];
  for (const sync of ["on", "off"]) {
    for (const name of [plainSchema, schema]) {
      const sql = postgres(url!, {
        max: 32,
        onnotice: () => {},
        connection: { synchronous_commit: sync },
      });
      const text =
        `UPDATE "${name}"."session" SET expire = expire WHERE sid = $1`;
      let commits = 0;
      const end = performance.now() + 2000;
      await Promise.all(Array.from({ length: 32 }, async () => {
        while (performance.now() < end) {
          const sid = sessions.sids[(Math.random() * SESSION_COUNT) | 0];
          await sql.unsafe(text, [sid], { prepare: true });
          commits++;
        }
      }));
      await sql.end();
      lines.push(
        `synchronous_commit ${sync}, ${
          name === schema ? "with" : "without"
        } the triggers: ${fmt.int(commits / 2)} commits/s`,
      );
    }
  }
  return lines;
}

/** Heap and RSS of a full cache: 10,000 sessions of about 1 KB. */
async function cacheMemory(): Promise<string> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return "n/a (run with --v8-flags=--expose-gc)";
  const memTable = `"${schema}"."memory"`;
  const memNames = resolveTableNames(schema, "memory", () => {});
  await admin.unsafe(
    readFileSync(new URL("../../table.sql", import.meta.url), "utf8")
      .replaceAll('"session"', memTable)
      .replaceAll('"session_pkey"', '"memory_pkey"')
      .replaceAll('"IDX_session_expire"', '"IDX_memory_expire"'),
  );
  await alterTable(admin, memNames, { notify: true }, Infinity);
  const count = 10_000;
  const filler = "x".repeat(1024 - 120);
  await admin.unsafe(
    `INSERT INTO ${memTable} (sid, sess, expire)
     SELECT 'mem-' || i, json_build_object('cookie', json_build_object('originalMaxAge', 86400000,
       'expires', now() + interval '1 day', 'httpOnly', true, 'path', '/'), 'user', i, 'data', $1::text),
       now() + interval '1 day'
     FROM generate_series(1, $2::int4) i`,
    [filler, count],
  );
  const [{ size }] = await admin.unsafe(
    `SELECT avg(length(sess::text))::int AS size FROM ${memTable}`,
  );
  const store = new (connectPostgresSimple(session))({
    schemaName: schema,
    tableName: "memory",
    pruneSessionInterval: false,
    cache: { size: count },
  });
  try {
    await store.get("mem-1");
    const settle = async () => {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 200));
      gc();
      return process.memoryUsage();
    };
    const before = await settle();
    for (let i = 1; i <= count; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, k) => store.get(`mem-${i + k}`)),
      );
    }
    const after = await settle();
    const heap = after.heapUsed - before.heapUsed;
    const mb = (n: number) => (n / 1048576).toFixed(1);
    return `${
      count.toLocaleString("en-US")
    } sessions of ${size} bytes of JSON: heap +${mb(heap)} MB, ${
      Math.round(heap / count)
    } bytes a session (process RSS ${mb(after.rss)} MB)`;
  } finally {
    await store.close();
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function main(): Promise<void> {
  const sessions = makeSessions(SESSION_COUNT);
  const pgCpu = await setUp(sessions);
  const redis = await startRedis();
  const roles = (Object.keys(KINDS) as Role[]).filter((role) =>
    role !== "connect-redis" || typeof redis !== "string"
  );
  const [{ version, fsync, pgss }] = await admin`
    SELECT current_setting('server_version') AS version,
      current_setting('fsync') AS fsync,
      current_setting('shared_preload_libraries') LIKE '%pg_stat_statements%' AS pgss`;
  if (pgss) await admin`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`;
  console.log(
    `# The read cache: the request mix (get, then touch or set one time in ten; touchAfter 60)\n\n` +
      `PostgreSQL ${version} (fsync ${fsync}${
        pgCpu ? ", local" : ", not local: no DB CPU"
      }), ${
        typeof redis === "string"
          ? `no Redis: ${redis}`
          : `Redis ${redis.version} (appendfsync everysec)`
      }; ${Deno.build.os} ${navigator.hardwareConcurrency} CPUs, Deno ${Deno.version.deno}; ` +
      `${fmt.int(SESSION_COUNT)} sessions of ${
        JSON.stringify(sessions.sessions[0]).length
      } bytes, caches warm; ${config.reps} repetitions of ${
        config.durationMs / 1000
      } s per subject and concurrency, subjects interleaved in rotating order.\n`,
  );
  const redisServer = typeof redis === "string" ? undefined : redis;
  try {
    if (redisServer) {
      await fillRedis(redisServer.url, sessions.sids, sessions.sessions);
    }
    const servers = {
      pg: pgCpu,
      redis: redisServer ? processCpu(redisServer.pid) : undefined,
    };
    const runs = new Map<string, Sample[]>();
    const key = (role: Role, c: number) => `${role}@${c}`;
    for (let rep = 0; rep < config.reps; rep++) {
      for (const [ci, concurrency] of config.concurrency.entries()) {
        for (let k = 0; k < roles.length; k++) {
          const role = roles[(rep + ci + k) % roles.length];
          const sample = await runOne(
            role,
            concurrency,
            sessions,
            servers,
            redisServer,
          );
          runs.set(key(role, concurrency), [
            ...(runs.get(key(role, concurrency)) ?? []),
            sample,
          ]);
        }
      }
      console.error(`bench: repetition ${rep + 1}/${config.reps} done`);
    }

    const statements = new Map<
      Role,
      Awaited<ReturnType<typeof statementsPerRequest>>
    >();
    if (pgss) {
      for (const role of roles) {
        if (role !== "connect-redis") {
          statements.set(role, await statementsPerRequest(role, sessions));
        }
      }
    }

    const sameCommit = (role: Role): Role =>
      role.endsWith("sync off") ? "store, sync off" : "store";
    const perRep = (role: Role, base: Role, c: number) => {
      const mine = runs.get(key(role, c)) ?? [];
      const theirs = runs.get(key(base, c)) ?? [];
      return mine.map((s, i) => s.opsPerSecond / theirs[i]?.opsPerSecond);
    };
    console.log(
      "| subject | conc | requests/s | p50 ms | p99 ms | client µs/req | server µs/req | statements/req | ÷ store | ÷ store, same commit | ÷ connect-redis |",
    );
    console.log("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for (const concurrency of config.concurrency) {
      for (const role of roles) {
        const samples = runs.get(key(role, concurrency))!;
        const st = role === "connect-redis"
          ? "2 (Redis commands)"
          : statements.get(role)?.perRequest.toFixed(3) ?? "n/a";
        console.log(
          `| ${role} | ${concurrency} | ${
            spread(samples.map((s) => s.opsPerSecond), fmt.int)
          } | ${fmt.ms(median(samples.map((s) => s.p50Ms)))} | ${
            fmt.ms(median(samples.map((s) => s.p99Ms)))
          } | ${fmt.us(median(samples.map((s) => s.clientUsPerOp)))} | ${
            fmt.us(median(samples.map((s) => s.dbUsPerOp ?? NaN)))
          } | ${st} | ${
            role === "store"
              ? ""
              : spread(perRep(role, "store", concurrency), fmt.ratio)
          } | ${
            role.includes("cache")
              ? spread(perRep(role, sameCommit(role), concurrency), fmt.ratio)
              : ""
          } | ${
            role === "connect-redis" || !redisServer
              ? ""
              : spread(perRep(role, "connect-redis", concurrency), fmt.ratio)
          } |`,
        );
      }
    }
    console.log(
      "\nserver µs/req: PostgreSQL's CPU (every process of the server) per request, Redis's for connect-redis; ratios are per repetition (median, then range).",
    );
    if (statements.size) {
      console.log("\nWhere the statements go (per request):\n");
      for (const [role, figures] of statements) {
        if (figures) console.log(`- ${role}: ${figures.top.join("; ")}`);
      }
    } else {
      console.log(
        "\nstatements/req: n/a, pg_stat_statements is not loaded (deno task bench:cache loads it)",
      );
    }

    const { afterAck, afterSend } = await invalidationDelays(sessions);
    console.log(
      `\nInvalidation delay across two processes (${afterAck.length} writes; the reader polls its cache): ` +
        `after the write is acknowledged p50 ${
          fmt.ms(percentile(afterAck, 0.5))
        } ms, p99 ${fmt.ms(percentile(afterAck, 0.99))} ms; ` +
        `after it is sent p50 ${fmt.ms(percentile(afterSend, 0.5))} ms, p99 ${
          fmt.ms(percentile(afterSend, 0.99))
        } ms.`,
    );
    console.log(`\nMemory of a full cache: ${await cacheMemory()}.`);
    console.log(
      `\nWhat the triggers cost writers (32 clients updating sessions, 2 s each):\n${
        (await notifyCost(sessions)).map((line) => `- ${line}`).join("\n")
      }`,
    );

    const targets: string[] = [];
    const cached = statements.get("store + cache")?.perRequest;
    if (cached !== undefined) {
      targets.push(
        `statements/request with cache ${cached.toFixed(3)} (target ≤ 0.15): ${
          cached <= 0.15 ? "met" : "MISSED"
        }`,
      );
    }
    for (const c of config.concurrency) {
      for (
        const role of ["store + cache", "store + cache, sync off"] as const
      ) {
        const base = sameCommit(role);
        const vsStore = median(perRep(role, base, c));
        targets.push(
          `c=${c}: ${role} ÷ ${base} ${fmt.ratio(vsStore)} (target ≥ 3): ${
            vsStore >= 3 ? "met" : "MISSED"
          }`,
        );
        if (redisServer) {
          const vsRedis = median(perRep(role, "connect-redis", c));
          targets.push(
            `c=${c}: ${role} ÷ connect-redis ${
              fmt.ratio(vsRedis)
            } (target ≥ 1): ${vsRedis >= 1 ? "met" : "MISSED"}`,
          );
        }
      }
    }
    console.log(`\nTargets:\n${targets.map((t) => `- ${t}`).join("\n")}`);
  } finally {
    await redisServer?.stop();
    for (const name of [schema, plainSchema]) {
      await admin.unsafe(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
    }
    await admin.end();
  }
}

await main();
