/**
 * `deno task test:failover`: the store through two pg_auto_failover
 * failovers, as an app would live them.
 *
 * 1. Starts a throwaway formation (monitor + primary + synchronous
 *    secondary, `formation.ts`) and creates the session table.
 * 2. Starts the load (`load.ts`) in a child process: the store with its own
 *    pool from the multi-host `DATABASE_URL`, `set` at concurrency 10.
 * 3. After a warm-up, runs `pg_autoctl perform failover`, waits until the
 *    formation is healthy with the other node as primary, lets the load run
 *    on, fails back the same way, and stops the load after `--seconds`
 *    (at least 5 s after the second failover).
 * 4. Reads every acknowledged id back through a fresh connection to the
 *    current primary, prints the figures (`report.ts`) and exits 1 if a
 *    target is missed: at most 10 failed calls, no acknowledged write lost,
 *    no older value read.
 *
 * ```sh
 * deno task test:failover                    # the store from mod.ts, on Deno
 * deno task test:failover --runtime node     # the built npm package, on Node
 * deno task test:failover --attrs primary    # target_session_attrs=primary in the URL
 * deno task test:failover --keep             # keep the formation's directory (logs)
 * ```
 * `FAILOVER_RUNTIME=node` does what `--runtime node` does. Runs as root (the
 * servers run as the `postgres` user) or as `postgres` itself.
 *
 * @module
 */
import postgres from "postgres";
import { parseArgs } from "node:util";
import { join } from "node:path";
import { type FailoverRecord, Formation } from "./formation.ts";
import {
  epochMs,
  type LoadConfig,
  type LoadEvent,
  type LoadResult,
} from "./protocol.ts";
import { computeFigures, formatReport, missedTargets } from "./report.ts";
import { type NodeLoad, prepareNodeLoad } from "./node_load.ts";

const WARM_UP_MS = 5_000;
const BETWEEN_MS = 5_000;
const TAIL_MS = 5_000;
const READY_TIMEOUT_MS = 60_000;
/** Calls in flight at the stop, then 5 reads a worker, each within the 10 s callTimeout. */
const DONE_TIMEOUT_MS = 120_000;

const args = parseArgs({
  args: Deno.args,
  options: {
    runtime: {
      type: "string",
      default: Deno.env.get("FAILOVER_RUNTIME") ?? "deno",
    },
    seconds: { type: "string", default: "40" },
    concurrency: { type: "string", default: "10" },
    attrs: { type: "string", default: "read-write" },
    keep: { type: "boolean", default: false },
  },
}).values;

function log(message: string): void {
  console.log(`failover: ${message}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, Math.max(0, ms)));
}

/** The load child: its events as they come, and its exit. */
class LoadChild {
  readonly #child: Deno.ChildProcess;
  readonly #events: LoadEvent[] = [];
  #wake: () => void = () => {};
  #exited = false;
  readonly status: Promise<Deno.CommandStatus>;

  constructor(argv: string[], cwd: string, env: Record<string, string>) {
    this.#child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      cwd,
      env,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.status = this.#child.status.finally(() => {
      this.#exited = true;
      this.#wake();
    });
    this.#read();
  }

  async #read(): Promise<void> {
    let buffered = "";
    for await (
      const chunk of this.#child.stdout.pipeThrough(new TextDecoderStream())
    ) {
      buffered += chunk;
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (!line) continue;
        try {
          this.#events.push(JSON.parse(line));
        } catch {
          console.log(`load: ${line}`);
        }
        this.#wake();
      }
    }
  }

  /** Resolves when the child prints `event`; rejects on its error, exit or `timeoutMs`. */
  async waitFor(event: LoadEvent["event"], timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const failed = this.#events.find((e) => e.event === "error");
      if (failed?.event === "error") {
        throw new Error(`the load failed: ${failed.message}`);
      }
      if (this.#events.some((e) => e.event === event)) return;
      if (this.#exited) throw new Error(`the load exited before "${event}"`);
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new Error(
          `no "${event}" from the load within ${timeoutMs / 1000} s`,
        );
      }
      await new Promise<void>((done) => {
        const timer = setTimeout(done, left);
        this.#wake = () => {
          clearTimeout(timer);
          done();
        };
      });
    }
  }

  async send(line: string): Promise<void> {
    const writer = this.#child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(line + "\n"));
    writer.releaseLock();
  }

  kill(): void {
    if (this.#exited) return;
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
}

async function createTable(url: string): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(
      await Deno.readTextFile(new URL("../../table.sql", import.meta.url)),
    );
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Per session id, the version stored on `url` (a fresh connection). */
async function readBack(url: string): Promise<Map<string, number>> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<{ sid: string; v: number | null }[]>`
      select "sid", ("sess"->>'v')::int as "v" from "session"`;
    return new Map(rows.map((r) => [r.sid, r.v ?? 0]));
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function main(): Promise<number> {
  const runtime = args.runtime === "node" ? "node" : "deno";
  const concurrency = Number(args.concurrency);
  const seconds = Number(args.seconds);
  const formation = new Formation({ keep: args.keep });
  let load: LoadChild | undefined;
  let nodeLoad: NodeLoad | undefined;
  const cleanUp = async () => {
    load?.kill();
    await formation.stop();
    nodeLoad?.remove();
  };
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    Deno.addSignalListener(signal, () => {
      console.error(`failover: ${signal}: stopping what was started`);
      cleanUp().finally(() => Deno.exit(code));
    });
  }

  const started = performance.now();
  const elapsed = () =>
    `${((performance.now() - started) / 1000).toFixed(1)} s`;
  try {
    if (runtime === "node") {
      log("building the npm package and installing it for Node");
      nodeLoad = prepareNodeLoad();
      log(`Node project ready (${elapsed()})`);
    }
    await formation.start();
    const [node1, node2] = formation.nodes;
    log(
      `formation healthy (${elapsed()}): monitor, ${node1.name} :${node1.port} (primary), ` +
        `${node2.name} :${node2.port} (synchronous secondary), in ${formation.dir}`,
    );
    await createTable(node1.url);

    const url = formation.url.replace("read-write", args.attrs);
    const resultFile = join(formation.dir, "load-result.json");
    const config: LoadConfig = {
      concurrency,
      sidsPerWorker: 5,
      getEvery: 4,
      resultFile,
    };
    const env = { DATABASE_URL: url, FAILOVER_LOAD: JSON.stringify(config) };
    load = nodeLoad
      ? new LoadChild(nodeLoad.argv, nodeLoad.cwd, { ...env, ...nodeLoad.env })
      : new LoadChild(
        [
          Deno.execPath(),
          "run",
          "-A",
          "--quiet",
          new URL("./load.ts", import.meta.url).pathname,
        ],
        new URL("../../", import.meta.url).pathname,
        env,
      );
    log(`load on ${runtime}: concurrency ${concurrency}, DATABASE_URL=${url}`);
    await load.waitFor("ready", READY_TIMEOUT_MS);
    const loadStarted = performance.now();

    await sleep(WARM_UP_MS);
    const failovers: FailoverRecord[] = [];
    for (let i = 1; i <= 2; i++) {
      if (i > 1) await sleep(BETWEEN_MS);
      const record = await formation.failover();
      failovers.push(record);
      log(
        `failover ${i}: ${record.from} → ${record.to}, healthy again after ` +
          `${((record.healthyAt - record.startedAt) / 1000).toFixed(1)} s`,
      );
    }
    await sleep(
      Math.max(TAIL_MS, loadStarted + seconds * 1000 - performance.now()),
    );
    const loadEnd = epochMs();
    await load.send("stop");
    await load.waitFor("done", DONE_TIMEOUT_MS);
    const result: LoadResult = JSON.parse(await Deno.readTextFile(resultFile));

    const { primary } = await formation.waitHealthy();
    const stored = await readBack(primary.url);
    const figures = computeFigures(result, failovers, stored, loadEnd);
    console.log("\n" + formatReport(figures));
    log(`done in ${elapsed()}`);
    return missedTargets(figures).length ? 1 : 0;
  } finally {
    await cleanUp();
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (error) {
    console.error(`failover: ${(error as Error).stack ?? error}`);
    Deno.exit(2);
  }
}
