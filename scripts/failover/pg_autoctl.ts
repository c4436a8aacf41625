/**
 * Runs Debian's `pg_autoctl` (pg_auto_failover) as the `postgres` user, with
 * its configuration and state kept under one directory: the commands that
 * run to completion (`create`, `perform failover`, `stop`) and the long-lived
 * `pg_autoctl run` services.
 *
 * @module
 */
import { join } from "node:path";

/** The PostgreSQL binaries that pg_auto_failover's extension is built for. */
export interface Tools {
  /** `/usr/lib/postgresql/N/bin/pg_ctl`. */
  pgCtl: string;
  /** The PostgreSQL major, e.g. `"15"`. */
  major: string;
}

/** How to install what is missing, for error messages. */
export const INSTALL_HINT =
  "install it with apt as root: apt-get install postgresql-15-auto-failover pg-auto-failover-cli";

/**
 * Finds `pg_autoctl` and the newest PostgreSQL major that has the
 * `pgautofailover` extension installed.
 *
 * @throws {Error} when either is missing, with {@linkcode INSTALL_HINT}.
 */
export async function findTools(): Promise<Tools> {
  const version = await new Deno.Command("pg_autoctl", {
    args: ["--version"],
    stdout: "null",
    stderr: "null",
  }).output().catch(() => undefined);
  if (!version?.success) {
    throw new Error(`pg_autoctl is not on PATH: ${INSTALL_HINT}`);
  }
  const majors: number[] = [];
  const found = await Array.fromAsync(Deno.readDir("/usr/share/postgresql"))
    .catch(() => []);
  for (const entry of found) {
    const control =
      `/usr/share/postgresql/${entry.name}/extension/pgautofailover.control`;
    const pgCtl = `/usr/lib/postgresql/${entry.name}/bin/pg_ctl`;
    if (await exists(control) && await exists(pgCtl)) {
      majors.push(Number(entry.name));
    }
  }
  const major = majors.filter(Number.isInteger).sort((a, b) => b - a)[0];
  if (major === undefined) {
    throw new Error(
      `no PostgreSQL has the pgautofailover extension: ${INSTALL_HINT}`,
    );
  }
  return {
    pgCtl: `/usr/lib/postgresql/${major}/bin/pg_ctl`,
    major: String(major),
  };
}

/** Runs pg_autoctl commands for one formation directory. */
export class PgAutoctl {
  readonly #dir: string;
  readonly #asRoot = Deno.uid() === 0;

  /** @param dir The formation's directory: pg_autoctl's config and state go under it. */
  constructor(dir: string) {
    this.#dir = dir;
  }

  /**
   * Prepares `dir` for the `postgres` user (as root: owned by it, and the
   * directory PostgreSQL puts its Unix socket in exists).
   */
  async prepare(): Promise<void> {
    if (!this.#asRoot) return;
    await run(["chown", "postgres:", this.#dir]);
    // Debian's default unix_socket_directories; the postgresql package makes it, but a
    // container started after the install may not have it, and the server refuses to
    // start without any socket.
    if (!await exists("/var/run/postgresql")) {
      await Deno.mkdir("/var/run/postgresql", {
        recursive: true,
        mode: 0o2775,
      });
      await run(["chown", "postgres:postgres", "/var/run/postgresql"]);
    }
  }

  /**
   * Runs `pg_autoctl args...` (or `program args...`) to completion, as the
   * postgres user, its output appended to `log`.
   *
   * @throws {Error} when it fails or outlives `timeoutMs`, with the end of `log`.
   */
  async run(
    args: string[],
    log: string,
    timeoutMs = 120_000,
    program = "pg_autoctl",
  ): Promise<void> {
    const child = this.#spawn(args, log, program);
    const timer = setTimeout(() => child.kill(), timeoutMs);
    try {
      const status = await child.status;
      await child.logged;
      if (!status.success) {
        throw new Error(
          `${program} ${
            args.slice(0, 2).join(" ")
          } failed (exit ${status.code}); end of ${log}:\n${await tail(log)}`,
        );
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Starts `pg_autoctl args...` in the background, its output appended to `log`. */
  spawn(args: string[], log: string): Service {
    return this.#spawn(args, log);
  }

  #spawn(args: string[], log: string, program = "pg_autoctl"): Service {
    const env = {
      PATH: Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      HOME: this.#dir,
      LANG: "C.UTF-8",
      XDG_CONFIG_HOME: join(this.#dir, "config"),
      XDG_DATA_HOME: join(this.#dir, "share"),
      XDG_RUNTIME_DIR: join(this.#dir, "run"),
    };
    const command = [
      "env",
      ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
      program,
      ...args,
    ];
    const argv = this.#asRoot
      ? ["runuser", "-u", "postgres", "--", ...command]
      : command;
    const child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      cwd: "/", // the caller's directory may be closed to the postgres user
      clearEnv: true,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Each stream to its own append-mode handle: writes land whole, in order.
    const logged = Promise.all(
      [child.stdout, child.stderr].map((stream) =>
        stream.pipeTo(
          Deno.openSync(log, { create: true, append: true }).writable,
        )
          .catch(() => {})
      ),
    );
    let exited = false;
    const status = child.status.finally(() => exited = true);
    return {
      pid: child.pid,
      status,
      logged: logged.then(() => {}),
      exited: () => exited,
      kill: (signal: Deno.Signal = "SIGTERM") => {
        try {
          child.kill(signal);
        } catch {
          // already gone
        }
      },
    };
  }
}

/** A `pg_autoctl` process started by {@linkcode PgAutoctl.spawn}. */
export interface Service {
  /** The pid of the process spawned (`runuser` as root). */
  pid: number;
  status: Promise<Deno.CommandStatus>;
  /** Resolves once its output is all in the log file. */
  logged: Promise<void>;
  exited(): boolean;
  kill(signal?: Deno.Signal): void;
}

/** The last lines of a log file. */
export async function tail(file: string, lines = 25): Promise<string> {
  const text = await Deno.readTextFile(file).catch(() => "");
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function run(argv: string[]): Promise<void> {
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "null",
  })
    .output();
  if (!out.success) {
    throw new Error(
      `${argv.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}
