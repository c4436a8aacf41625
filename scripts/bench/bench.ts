/**
 * The benchmark: this store against connect-pg-simple 10 and against the
 * floor (the same SQL straight through postgres.js), on one server and one
 * table, interleaved so that a noisy machine hits all three alike.
 *
 * ```sh
 * deno task bench                   # full run, about 5 minutes
 * deno task bench --quick           # a smoke run, about 30 s
 * deno task bench --memory          # RSS over a million store operations
 * deno task bench --users           # sessionsOf/destroyOf on 1,000,000 sessions (users.ts)
 * deno task bench --duration=3 --reps=5 --long=30 --concurrency=1,8,32
 * ```
 *
 * Flags (each also read from the environment as `BENCH_<NAME>`):
 * `--duration` measured seconds per run (1.5), `--warmup` seconds before
 * each (0.3), `--reps` repetitions (3), `--long` seconds of the long
 * concurrency-32 get run, 0 to skip (20), `--concurrency` (1,32),
 * `--workloads` (all), `--memory-ops` (1000000), `--subject` for `--memory`
 * (store; or floor, connect-pg-simple).
 *
 * Every run opens fresh pools (10 connections each) and closes them after,
 * so no run inherits another's state. Database CPU is the server's process
 * CPU from `/proc` (all its processes, background ones included), shown
 * only when the server runs on this machine.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import postgres from "postgres";
import {
  fmt,
  localServerCpu,
  measure,
  median,
  type Sample,
  type ServerCpu,
  spread,
} from "./measure.ts";
import { usersBench } from "./users.ts";
import {
  fillSessionTable,
  makeSessions,
  openSubject,
  POOL_SIZE,
  SESSION_COUNT,
  type SessionSet,
  type SubjectKind,
  WORKLOADS,
} from "./subjects.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    memory: { type: "boolean", default: false },
    users: { type: "boolean", default: false },
    duration: { type: "string" },
    warmup: { type: "string" },
    reps: { type: "string" },
    long: { type: "string" },
    concurrency: { type: "string" },
    workloads: { type: "string" },
    "memory-ops": { type: "string" },
    subject: { type: "string" },
  },
});

function setting(name: keyof typeof args.values, full: string, quick: string) {
  const env = process.env[`BENCH_${name.toUpperCase().replace("-", "_")}`];
  const value = args.values[name] ?? env ?? (args.values.quick ? quick : full);
  return String(value);
}

const config = {
  durationMs: Number(setting("duration", "1.5", "0.3")) * 1000,
  warmupMs: Number(setting("warmup", "0.3", "0.1")) * 1000,
  reps: Number(setting("reps", "3", "1")),
  longMs: Number(setting("long", "20", "4")) * 1000,
  concurrency: setting("concurrency", "1,32", "1,32").split(",").map(Number),
  workloads: setting(
    "workloads",
    [...Object.keys(WORKLOADS), "request mix (touchAfter 60)"].join(","),
    [...Object.keys(WORKLOADS), "request mix (touchAfter 60)"].join(","),
  ).split(",").map((w) => w.trim()).filter(Boolean),
  memoryOps: Number(setting("memory-ops", "1000000", "200000")),
};

const url = process.env.DATABASE_URL;
if (!url) {
  console.error(
    "bench: DATABASE_URL is not set; run `deno task bench`, which starts a throwaway PostgreSQL",
  );
  Deno.exit(2);
}

const admin = postgres(url, { max: 1, onnotice: () => {} });
const schema = `bench_${process.pid}`;

async function setUp(sessions: SessionSet): Promise<ServerCpu | undefined> {
  await fillSessionTable(admin, schema, sessions);
  const [{ pid }] = await admin`SELECT pg_backend_pid() AS pid`;
  return localServerCpu(pid);
}

/** Waits (up to 5 s) until only the admin connection is left on the server. */
async function settleBackends(): Promise<void> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const [{ n }] = await admin`
      SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
        AND datname = current_database()`;
    if (n === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** One measured run: a fresh subject, warm-up, measurement, close. */
async function runOne(
  kind: SubjectKind,
  workload: string,
  concurrency: number,
  sessions: SessionSet,
  server: ServerCpu | undefined,
  durationMs = config.durationMs,
  windowMs = 0,
): Promise<Sample> {
  const subject = await openSubject(kind, url!, schema);
  const op = WORKLOADS[workload.replace(" (touchAfter 60)", "")];
  try {
    return await measure({
      op: () => op(subject, sessions, (Math.random() * SESSION_COUNT) | 0),
      concurrency,
      warmupMs: config.warmupMs,
      durationMs,
      windowMs,
      server,
    });
  } finally {
    await subject.close();
    await settleBackends();
  }
}

type Role = "store" | "cps" | "floor";
const ROLES: Role[] = ["store", "cps", "floor"];

function kindOf(role: Role, workload: string): SubjectKind {
  const touchAfter = workload.endsWith("(touchAfter 60)");
  if (role === "cps") return "connect-pg-simple";
  if (role === "store") return touchAfter ? "store, touchAfter 60" : "store";
  return touchAfter ? "floor, touchAfter 60" : "floor";
}

interface Cell {
  workload: string;
  concurrency: number;
  runs: Record<Role, Sample[]>;
}

function ratios(cell: Cell, pick: (s: Sample) => number, base: Role): number[] {
  return cell.runs.store.map((s, i) => pick(s) / pick(cell.runs[base][i]));
}

function printMatrix(cells: Cell[], hasDbCpu: boolean): void {
  console.log(
    "\n| workload | conc | subject | ops/s | p50 ms | p99 ms | client µs/op | DB µs/op | ops/s ÷ cps | ops/s ÷ floor | DB CPU ÷ cps | DB CPU ÷ floor |",
  );
  console.log("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
  for (const cell of cells) {
    for (const role of ROLES) {
      const runs = cell.runs[role];
      const name = role === "cps" ? "connect-pg-simple" : role;
      const row = [
        cell.workload,
        String(cell.concurrency),
        role === "store" ? `**${name}**` : name,
        spread(runs.map((s) => s.opsPerSecond), fmt.int),
        fmt.ms(median(runs.map((s) => s.p50Ms))),
        fmt.ms(median(runs.map((s) => s.p99Ms))),
        fmt.us(median(runs.map((s) => s.clientUsPerOp))),
        hasDbCpu ? fmt.us(median(runs.map((s) => s.dbUsPerOp ?? NaN))) : "n/a",
      ];
      if (role === "store") {
        const ops = (s: Sample) => s.opsPerSecond;
        const db = (s: Sample) => s.dbUsPerOp ?? NaN;
        row.push(
          spread(ratios(cell, ops, "cps"), fmt.ratio),
          spread(ratios(cell, ops, "floor"), fmt.ratio),
          hasDbCpu ? spread(ratios(cell, db, "cps"), fmt.ratio) : "n/a",
          hasDbCpu ? spread(ratios(cell, db, "floor"), fmt.ratio) : "n/a",
        );
      } else row.push("", "", "", "");
      console.log(`| ${row.join(" | ")} |`);
    }
  }
}

function printTargets(cells: Cell[], hasDbCpu: boolean): void {
  const lines: string[] = [];
  const check = (name: string, value: number, ok: boolean, goal: string) =>
    lines.push(
      `| ${name} | ${fmt.ratio(value)} | ${goal} | ${ok ? "met" : "MISSED"} |`,
    );
  for (const cell of cells) {
    const at = `${cell.workload}, c=${cell.concurrency}`;
    const ops = (s: Sample) => s.opsPerSecond;
    const vsCps = median(ratios(cell, ops, "cps"));
    const vsFloor = median(ratios(cell, ops, "floor"));
    if (cell.workload.endsWith("(touchAfter 60)")) {
      check(`${at}: ops/s ÷ cps`, vsCps, vsCps >= 1.3, "≥ 1.30");
    } else {
      check(`${at}: ops/s ÷ cps`, vsCps, vsCps >= 1, "≥ 1.00");
      check(`${at}: ops/s ÷ floor`, vsFloor, vsFloor >= 0.95, "≥ 0.95");
    }
    if (hasDbCpu) {
      const limit = cell.workload === "get"
        ? 0.5
        : ["set", "touch", "request mix"].includes(cell.workload)
        ? 0.7
        : undefined;
      if (limit !== undefined) {
        const db = median(ratios(cell, (s) => s.dbUsPerOp ?? NaN, "cps"));
        check(`${at}: DB CPU ÷ cps`, db, db <= limit, `≤ ${limit}`);
      }
    }
    if (cell.concurrency === 32) {
      const p99 = median(ratios(cell, (s) => s.p99Ms, "cps"));
      check(`${at}: p99 ÷ cps`, p99, p99 <= 1, "≤ 1.00");
    }
  }
  console.log(
    "\n| target | measured (median of per-repetition ratios) | goal | |",
  );
  console.log("|---|--:|--:|---|");
  for (const line of lines) console.log(line);
}

async function longRun(
  sessions: SessionSet,
  server: ServerCpu | undefined,
): Promise<void> {
  const kinds: SubjectKind[] = ["floor", "floor, max_pipeline 0", "store"];
  console.log(
    `\nLong run: get at concurrency 32 for ${
      config.longMs / 1000
    } s each, fresh pools; ops/s and client µs/op per 2 s window.\n`,
  );
  console.log(
    "| subject | first 2 s ops/s | last 2 s ops/s | last ÷ first | whole run ops/s | client µs/op first → last | DB µs/op |",
  );
  console.log("|---|--:|--:|--:|--:|--:|--:|");
  for (const kind of kinds) {
    const s = await runOne(
      kind,
      "get",
      32,
      sessions,
      server,
      config.longMs,
      2000,
    );
    const first = s.windows[0] ?? s.opsPerSecond;
    const last = s.windows.at(-1) ?? s.opsPerSecond;
    console.log(
      `| ${kind} | ${fmt.int(first)} | ${fmt.int(last)} | ${
        fmt.ratio(last / first)
      } | ${fmt.int(s.opsPerSecond)} | ${
        fmt.us(s.windowClientUs[0] ?? s.clientUsPerOp)
      } → ${fmt.us(s.windowClientUs.at(-1) ?? s.clientUsPerOp)} | ${
        fmt.us(s.dbUsPerOp)
      } |`,
    );
  }
}

async function memoryRun(sessions: SessionSet): Promise<void> {
  const kind = (args.values.subject ?? "store") as SubjectKind;
  const subject = await openSubject(kind, url!, schema);
  const gc = (globalThis as { gc?: () => void }).gc;
  const mb = (n: number) => (n / 1048576).toFixed(1);
  const marks = new Set<number>();
  for (let n = 100_000; n <= config.memoryOps; n += 100_000) marks.add(n);
  let ops = 0;
  let at100k = 0;
  let heapAt100k = 0;
  const concurrency = Math.max(...config.concurrency);
  console.log(
    `\nMemory: ${
      fmt.int(config.memoryOps)
    } ${kind} operations (get, then touch), concurrency ${concurrency}${
      gc ? ", after a forced GC at each mark" : ""
    }\n`,
  );
  console.log("| operations | RSS MB | heap used MB |");
  console.log("|--:|--:|--:|");
  const worker = async () => {
    while (ops < config.memoryOps) {
      const i = (Math.random() * SESSION_COUNT) | 0;
      await subject.get(sessions.sids[i]);
      await subject.touch(sessions.sids[i], sessions.fresh(i));
      ops += 2;
      if (marks.delete(ops)) {
        // Twice, with a pause: freed pages go back to the system lazily.
        gc?.();
        await new Promise((resolve) => setTimeout(resolve, 200));
        gc?.();
        const { rss, heapUsed } = process.memoryUsage();
        if (at100k === 0) [at100k, heapAt100k] = [rss, heapUsed];
        console.log(`| ${fmt.int(ops)} | ${mb(rss)} | ${mb(heapUsed)} |`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  gc?.();
  const { rss, heapUsed } = process.memoryUsage();
  const growth = (rss - at100k) / 1048576;
  console.log(
    `\nRSS growth from 100k to ${fmt.int(ops)} operations: ${
      growth.toFixed(1)
    } MB (target ≤ 10 MB: ${growth <= 10 ? "met" : "MISSED"}); heap used: ${
      ((heapUsed - heapAt100k) / 1048576).toFixed(1)
    } MB, ${
      ((heapUsed - heapAt100k) / (ops - 100_000)).toFixed(1)
    } bytes per operation`,
  );
  await subject.close();
}

async function main(): Promise<void> {
  if (args.values.users) {
    await admin.end();
    await usersBench(url!, {
      quick: args.values.quick,
      reps: Number(setting("reps", "5", "2")),
      durationSeconds: Number(setting("duration", "2", "1")),
    });
    return;
  }
  const sessions = makeSessions(SESSION_COUNT);
  const server = await setUp(sessions);
  const [{ version }] =
    await admin`SELECT current_setting('server_version') AS version`;
  console.log(
    `# connect-postgres-simple benchmark\n\nPostgreSQL ${version}${
      server
        ? ` (local, postmaster pid ${server.postmaster})`
        : " (not local: no DB CPU)"
    }, ${Deno.build.os} ${navigator.hardwareConcurrency} CPUs, Deno ${Deno.version.deno}; ` +
      `${fmt.int(SESSION_COUNT)} sessions of ${
        JSON.stringify(sessions.sessions[0]).length
      } bytes; pools of ${POOL_SIZE}.`,
  );
  try {
    if (args.values.memory) {
      await memoryRun(sessions);
      return;
    }
    console.log(
      `${config.reps} repetitions of ${
        config.durationMs / 1000
      } s runs (after ${
        config.warmupMs / 1000
      } s warm-up), the three subjects interleaved in rotating order; ` +
        "values are medians, (min–max) across repetitions; ratios are per repetition.",
    );
    const cells: Cell[] = [];
    for (const workload of config.workloads) {
      for (const concurrency of config.concurrency) {
        cells.push({
          workload,
          concurrency,
          runs: { store: [], cps: [], floor: [] },
        });
      }
    }
    const started = Date.now();
    for (let rep = 0; rep < config.reps; rep++) {
      for (const [index, cell] of cells.entries()) {
        for (let k = 0; k < ROLES.length; k++) {
          const role = ROLES[(rep + index + k) % ROLES.length];
          cell.runs[role].push(
            await runOne(
              kindOf(role, cell.workload),
              cell.workload,
              cell.concurrency,
              sessions,
              server,
            ),
          );
        }
      }
      console.error(
        `bench: repetition ${rep + 1}/${config.reps} done after ${
          ((Date.now() - started) / 1000).toFixed(0)
        } s`,
      );
    }
    if (config.reps > 0) {
      printMatrix(cells, server !== undefined);
      printTargets(cells, server !== undefined);
    }
    if (config.longMs > 0) await longRun(sessions, server);
  } finally {
    await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  }
}

await main();
