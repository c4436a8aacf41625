/**
 * The soak test: the request mix at concurrency 32 on the store's own pool
 * for N minutes, with the database restarted every 2 minutes, and per
 * minute the throughput, the 99th percentile, the errors and the memory.
 * Not part of CI (it runs for half an hour); run it before a release.
 *
 * ```sh
 * deno task soak --minutes 30        # the release check
 * deno task soak --minutes 3 --restart-every 40
 * deno task soak --minutes 6 --pool-max 32   # no statement ever pipelined
 * ```
 *
 * A request is a `get`, then a `set` (one request in ten, a new version of
 * the session) or a `touch`, on sessions each worker owns, so a worker
 * knows the last version it was told was stored. It prints a line a minute
 * and, at the end, checks: RSS flat within 10 MB after the first two
 * minutes, the p99 of the last 5 minutes within 1.5× of the first 5 (of
 * the first and last halves in a shorter run), and every acknowledged write
 * still there (read through a new connection), none read older than
 * acknowledged. Exit status 1 when a check fails.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import session from "express-session";
import connectPostgresSimple from "../../mod.ts";
import { startPostgres } from "../postgres/server.ts";
import { LatencyHistogram } from "./histogram.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    minutes: { type: "string", default: "30" },
    "restart-every": { type: "string", default: "120" },
    concurrency: { type: "string", default: "32" },
    sessions: { type: "string", default: "200" },
    "pool-max": { type: "string" },
  },
});
const minutes = Number(values.minutes);
const restartEveryMs = Number(values["restart-every"]) * 1000;
const concurrency = Number(values.concurrency);
const sessionsPerWorker = Number(values.sessions);
for (const [name, value] of Object.entries({ minutes, concurrency })) {
  if (!(value > 0)) throw new Error(`--${name} must be a positive number`);
}

const PostgresStore = connectPostgresSimple(session);
const DAY_MS = 86_400_000;

/** A session of about 300 bytes, at version `v`. */
function sessionAt(worker: number, v: number): session.SessionData {
  return {
    cookie: {
      originalMaxAge: DAY_MS,
      expires: new Date(Date.now() + DAY_MS),
      httpOnly: true,
      path: "/",
    },
    user: { id: `user-${worker}`, name: "Ada Lovelace", roles: ["reader"] },
    cart: ["book-1", "book-2"],
    v,
  } as unknown as session.SessionData;
}

interface Minute {
  ops: number;
  latencies: LatencyHistogram;
  errors: Map<string, number>;
}

const newMinute = (): Minute => ({
  ops: 0,
  latencies: new LatencyHistogram(),
  errors: new Map(),
});

const server = await startPostgres({ handleSignals: true });
// `--pool-max N`: the store's own pool's `max` (postgres.js's default is 10).
const poolMax = values["pool-max"];
process.env.DATABASE_URL = poolMax === undefined
  ? server.url
  : `${server.url}?max=${Number(poolMax)}`;
console.log(
  `soak: PostgreSQL ${server.version} on port ${server.port}; ${minutes} min, concurrency ${concurrency}, restart every ${
    restartEveryMs / 1000
  } s`,
);
const store = new PostgresStore({
  createTableIfMissing: true,
  pruneSessionInterval: 60,
});

/** Per worker, per session: the last version acknowledged as stored. */
const acknowledged = Array.from(
  { length: concurrency },
  () => new Array<number>(sessionsPerWorker).fill(-1),
);
let olderReads = 0;
let current = newMinute();
const minutesDone: Minute[] = [];
const rss: number[] = [];
let stop = false;
let restarts = 0;

const record = (error: unknown) => {
  const code = String((error as { code?: unknown })?.code ?? error);
  current.errors.set(code, (current.errors.get(code) ?? 0) + 1);
};

async function worker(w: number): Promise<void> {
  for (let n = 0; !stop; n++) {
    const i = n % sessionsPerWorker;
    const sid = `soak-${w}-${i}`;
    const started = performance.now();
    try {
      const got = await store.get(sid) as unknown as { v: number } | null;
      const known = acknowledged[w][i];
      if (known >= 0 && (got === null || got.v < known)) olderReads++;
      if (known < 0 || Math.random() < 0.1) {
        const v = known + 1;
        await store.set(sid, sessionAt(w, v));
        acknowledged[w][i] = v;
      } else {
        await store.touch(sid, sessionAt(w, known));
      }
      current.ops++;
      current.latencies.add(performance.now() - started);
    } catch (error) {
      record(error);
    }
  }
}

const gc = (globalThis as { gc?: () => void }).gc;
const started = performance.now();
const workers = Array.from({ length: concurrency }, (_, w) => worker(w));
const restarter = setInterval(() => {
  server.restart().then(
    () => restarts++,
    (error) => console.error(`soak: restart failed: ${error}`),
  );
}, restartEveryMs);

console.log("minute | ops/s | p50 ms | p99 ms | errors | RSS MB | heap MB");
for (let minute = 1; minute <= minutes; minute++) {
  const due = started + minute * 60_000;
  while (performance.now() < due) {
    await new Promise((resolve) =>
      setTimeout(resolve, Math.min(1000, due - performance.now()))
    );
  }
  const done = current;
  current = newMinute();
  minutesDone.push(done);
  gc?.();
  const memory = process.memoryUsage();
  rss.push(memory.rss / 2 ** 20);
  const errors = [...done.errors].map(([k, v]) => `${k}×${v}`).join(" ") ||
    "0";
  console.log(
    `${minute} | ${(done.ops / 60).toFixed(0)} | ${
      done.latencies.percentile(0.5).toFixed(2)
    } | ${done.latencies.percentile(0.99).toFixed(2)} | ${errors} | ${
      rss.at(-1)!.toFixed(1)
    } | ${(memory.heapUsed / 2 ** 20).toFixed(1)}`,
  );
}
stop = true;
clearInterval(restarter);
await Promise.all(workers);
await store.close();

// Every acknowledged write, read back through a new connection.
const reader = new PostgresStore({ pruneSessionInterval: false });
let lost = 0;
let checked = 0;
for (const [w, versions] of acknowledged.entries()) {
  await Promise.all(versions.map(async (v, i) => {
    if (v < 0) return;
    checked++;
    const got = await reader.get(`soak-${w}-${i}`) as unknown as
      | { v: number }
      | null;
    if (got === null || got.v !== v) lost++;
  }));
}
await reader.close();
await server.stop();

const window = Math.min(5, Math.floor(minutesDone.length / 2));
const p99Of = (list: Minute[]) =>
  list[0].latencies.percentile(0.99, list.slice(1).map((m) => m.latencies));
const firstP99 = p99Of(minutesDone.slice(0, window));
const lastP99 = p99Of(minutesDone.slice(-window));
const settled = rss.slice(Math.min(2, rss.length - 1));
const rssSpread = Math.max(...settled) - Math.min(...settled);
const totalErrors = minutesDone.reduce(
  (sum, m) => sum + [...m.errors.values()].reduce((a, b) => a + b, 0),
  0,
);
const checks: [string, boolean, string][] = [
  [
    "RSS flat within 10 MB after warm-up",
    rssSpread <= 10,
    `${rssSpread.toFixed(1)} MB`,
  ],
  [
    `p99 of the last ${window} min within 1.5× of the first ${window}`,
    lastP99 <= 1.5 * firstP99,
    `${firstP99.toFixed(2)} → ${lastP99.toFixed(2)} ms (${
      (lastP99 / firstP99).toFixed(2)
    }×)`,
  ],
  ["no acknowledged write lost", lost === 0, `${lost} of ${checked}`],
  ["no value read older than acknowledged", olderReads === 0, `${olderReads}`],
];
console.log(
  `\n${restarts} restarts, ${totalErrors} failed requests, ${checked} sessions checked`,
);
for (const [what, ok, figure] of checks) {
  console.log(`${ok ? "PASS" : "FAIL"} ${what}: ${figure}`);
}
process.exitCode = checks.every(([, ok]) => ok) ? 0 : 1;
