/**
 * Measuring for `bench.ts`: a closed-loop run of one operation at a given
 * concurrency, with latency percentiles, the client's CPU
 * (`process.cpuUsage`) and the database server's CPU (from `/proc`, when the
 * server runs on this machine).
 *
 * @module
 */
import process from "node:process";
import { readdirSync, readFileSync } from "node:fs";

/** What one measured run gives. */
export interface Sample {
  ops: number;
  seconds: number;
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Client CPU (user + system) per operation, µs. */
  clientUsPerOp: number;
  /** Server CPU per operation, µs, or `undefined` when the server is not local. */
  dbUsPerOp: number | undefined;
  /** Operations per second in consecutive windows (for long runs). */
  windows: number[];
  /** Client CPU per operation in the same windows, µs. */
  windowClientUs: number[];
}

/** Reads the CPU time of every process of one local PostgreSQL server. */
export interface ServerCpu {
  /** Nanoseconds of CPU the server has used so far (live processes and reaped children). */
  read(): number;
  /** The postmaster's pid. */
  postmaster: number;
}

const TICK_NS = 1e9 / 100; // USER_HZ is 100 on Linux

function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces: split after its closing paren.
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** Nanoseconds on CPU of one live process (`/proc/<pid>/schedstat`), else from its ticks. */
function processNs(pid: number, fields: string[]): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]);
  } catch {
    return (Number(fields[11]) + Number(fields[12])) * TICK_NS;
  }
}

function childrenOf(postmaster: number): number[] {
  try {
    const text = readFileSync(
      `/proc/${postmaster}/task/${postmaster}/children`,
      "utf8",
    ).trim();
    if (text) return text.split(" ").map(Number);
  } catch {
    // No `children` file on this kernel: scan /proc below.
  }
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const fields = statFields(Number(name));
    if (fields && Number(fields[1]) === postmaster) pids.push(Number(name));
  }
  return pids;
}

/**
 * Finds the server behind a backend pid (from `pg_backend_pid()`): its
 * parent, the postmaster. `undefined` when that process is not visible here
 * (a remote server, or one in another pid namespace).
 */
export function localServerCpu(backendPid: number): ServerCpu | undefined {
  const backend = statFields(backendPid);
  if (!backend) return undefined;
  let comm = "";
  try {
    comm = readFileSync(`/proc/${backendPid}/comm`, "utf8");
  } catch {
    return undefined;
  }
  if (!comm.startsWith("postgres")) return undefined;
  const postmaster = Number(backend[1]);
  return {
    postmaster,
    read() {
      const own = statFields(postmaster);
      if (!own) return NaN;
      // Exited children (autovacuum workers, closed backends) are in cutime/cstime.
      let ns = processNs(postmaster, own) +
        (Number(own[13]) + Number(own[14])) * TICK_NS;
      for (const pid of childrenOf(postmaster)) {
        const fields = statFields(pid);
        if (fields) ns += processNs(pid, fields);
      }
      return ns;
    },
  };
}

/**
 * The CPU time of one process, all its threads (e.g. a Redis server), in
 * the shape of {@linkcode ServerCpu}; in clock ticks (10 ms), so read it
 * over runs of a second or more.
 */
export function processCpu(pid: number): ServerCpu {
  return {
    postmaster: pid,
    read() {
      const fields = statFields(pid);
      if (!fields) return NaN;
      return (Number(fields[11]) + Number(fields[12])) * TICK_NS;
    },
  };
}

/** A growable list of latencies. */
class Latencies {
  #values = new Float64Array(1 << 16);
  length = 0;
  push(value: number): void {
    if (this.length === this.#values.length) {
      const bigger = new Float64Array(this.#values.length * 2);
      bigger.set(this.#values);
      this.#values = bigger;
    }
    this.#values[this.length++] = value;
  }
  percentile(p: number): number {
    if (this.length === 0) return NaN;
    const sorted = this.#values.slice(0, this.length).sort();
    return sorted[Math.min(this.length - 1, Math.floor(p * this.length))];
  }
}

/** How to run one measurement. */
export interface RunPlan {
  /** One operation; `worker` is the index of the calling worker. */
  op: (worker: number) => Promise<unknown>;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  /** Window length for `windows`; 0 for none. */
  windowMs?: number;
  server: ServerCpu | undefined;
}

/**
 * Runs `op` in `concurrency` closed loops: a warm-up, then `durationMs`
 * measured. Only operations started after the warm-up count; the clocks stop
 * when the last worker has finished its final operation.
 */
export async function measure(plan: RunPlan): Promise<Sample> {
  const { op, concurrency, warmupMs, durationMs, server } = plan;
  const windowMs = plan.windowMs ?? 0;
  const latencies = new Latencies();
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const stopAt = measureFrom + durationMs;
  let measuring = false;
  let ops = 0;
  let db0 = 0;
  let cpu0 = process.cpuUsage();
  let t0 = 0;
  const windows: number[] = [];
  const windowClientUs: number[] = [];
  let windowOps = 0;
  let windowCpu = cpu0;
  let windowEnd = 0;

  const begin = () => {
    measuring = true;
    db0 = server ? server.read() : 0;
    cpu0 = process.cpuUsage();
    windowCpu = cpu0;
    t0 = performance.now();
    windowEnd = t0 + windowMs;
  };

  const worker = async (index: number) => {
    while (true) {
      const before = performance.now();
      if (before >= stopAt) return;
      if (!measuring && before >= measureFrom) begin();
      await op(index);
      if (!measuring) continue;
      const after = performance.now();
      latencies.push(after - before);
      ops++;
      if (windowMs > 0) {
        windowOps++;
        if (after >= windowEnd) {
          const cpu = process.cpuUsage(windowCpu);
          windowCpu = process.cpuUsage();
          windows.push(windowOps / ((after - windowEnd + windowMs) / 1000));
          windowClientUs.push((cpu.user + cpu.system) / windowOps);
          windowOps = 0;
          windowEnd = after + windowMs;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(i)));
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const db1 = server ? server.read() : 0;
  const seconds = (t1 - t0) / 1000;
  return {
    ops,
    seconds,
    opsPerSecond: ops / seconds,
    p50Ms: latencies.percentile(0.5),
    p99Ms: latencies.percentile(0.99),
    clientUsPerOp: (cpu.user + cpu.system) / ops,
    dbUsPerOp: server ? (db1 - db0) / 1000 / ops : undefined,
    windows,
    windowClientUs,
  };
}

/** The median of some numbers. */
export function median(values: number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Number formats of the bench tables; `n/a` for what was not measured. */
export const fmt = {
  int: (n: number): string =>
    Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "n/a",
  ms: (n: number): string =>
    Number.isFinite(n) ? n.toFixed(n < 10 ? 2 : 1) : "n/a",
  us: (n: number | undefined): string =>
    n !== undefined && Number.isFinite(n) ? n.toFixed(1) : "n/a",
  ratio: (n: number): string => Number.isFinite(n) ? n.toFixed(2) : "n/a",
};

/** `median (min–max)` of some values, each shown with `show`. */
export function spread(
  values: number[],
  show: (n: number) => string,
): string {
  if (values.length < 2) return show(values[0]);
  return `${show(median(values))} (${show(Math.min(...values))}–${
    show(Math.max(...values))
  })`;
}
