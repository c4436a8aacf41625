/**
 * Run a command with `DATABASE_URL` pointing at a PostgreSQL server.
 *
 * ```sh
 * deno run -A scripts/postgres/with_postgres.ts [--keep-data[=DIR]] [--set NAME=VALUE]... [--] <command> [args...]
 * ```
 *
 * - With `DATABASE_URL` already set, the command runs against that server.
 * - Otherwise a throwaway PostgreSQL starts (see `server.ts`; `EMBEDDED_PG_VERSION`
 *   picks another major), the command runs with `DATABASE_URL` set to it, and the server is
 *   stopped and its temporary directory removed afterwards.
 * - `--keep-data` keeps the cluster in a directory that survives runs, by default
 *   `.tmp/demo-pg` under the repository root, so sessions outlive a restart of the demo.
 * - `--set NAME=VALUE` (repeatable) starts the throwaway server with that setting, after its
 *   own (e.g. the read cache's bench: `shared_preload_libraries=pg_stat_statements`,
 *   `fsync=on`); ignored, with a message, when `DATABASE_URL` is given.
 *
 * The command inherits stdin, stdout and stderr. SIGINT, SIGTERM and SIGHUP are passed on to
 * it; once it has exited the server is stopped. The exit status is the command's (128 +
 * signal number if a signal ended it), 127 if it cannot be started, 1 if the server cannot
 * be started, and 2 for a usage error. The launcher's own messages are single lines on
 * stderr, prefixed with `with_postgres:`.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { type PostgresServer, startPostgres } from "./server.ts";

const DEFAULT_KEEP_DIR = fileURLToPath(
  new URL("../../.tmp/demo-pg", import.meta.url),
);
const SIGNALS: readonly Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];
const SIGNAL_NUMBERS: Readonly<Record<string, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGABRT: 6,
  SIGKILL: 9,
  SIGSEGV: 11,
  SIGPIPE: 13,
  SIGTERM: 15,
};
const USAGE =
  "usage: deno run -A scripts/postgres/with_postgres.ts [--keep-data[=DIR]] [--set NAME=VALUE]... [--] " +
  "<command> [args...]";

/** Parsed command line. */
interface Invocation {
  keepDir: string | undefined;
  settings: Record<string, string>;
  command: string[];
}

function say(message: string): void {
  console.error(`with_postgres: ${message}`);
}

function parseArgs(args: string[]): Invocation | string {
  let keepDir: string | undefined;
  const settings: Record<string, string> = {};
  let i = 0;
  for (; i < args.length && args[i].startsWith("--"); i++) {
    const arg = args[i];
    if (arg === "--") {
      i++;
      break;
    } else if (arg === "--set" || arg.startsWith("--set=")) {
      const setting = arg === "--set" ? args[++i] : arg.slice("--set=".length);
      const equals = setting?.indexOf("=") ?? -1;
      if (equals <= 0) return `--set takes NAME=VALUE, got ${setting}`;
      settings[setting.slice(0, equals)] = setting.slice(equals + 1);
    } else if (arg === "--keep-data") {
      keepDir = DEFAULT_KEEP_DIR;
    } else if (
      arg.startsWith("--keep-data=") && arg.length > "--keep-data=".length
    ) {
      keepDir = arg.slice("--keep-data=".length);
    } else {
      return `unknown option ${arg}`;
    }
  }
  const command = args.slice(i);
  if (command.length === 0) return "no command given";
  return { keepDir, settings, command };
}

/** `postgres://user:secret@host:port/db` → `postgres://user:***@host:port/db`. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.href;
  } catch {
    return "(an unparsable URL)";
  }
}

async function main(args: string[]): Promise<number> {
  const invocation = parseArgs(args);
  if (typeof invocation === "string") {
    say(`${invocation}\n${USAGE}`);
    return 2;
  }

  // Listen for signals from the start, so that one arriving while the server starts is not
  // lost: the server is then stopped again as soon as it is up.
  let child: Deno.ChildProcess | undefined;
  let interrupted: Deno.Signal | undefined;
  for (const sig of SIGNALS) {
    Deno.addSignalListener(sig, () => {
      interrupted ??= sig;
      if (child) {
        try {
          child.kill(sig);
        } catch {
          // the command has already exited
        }
      }
    });
  }

  let server: PostgresServer | undefined;
  const env: Record<string, string> = {};
  const given = Deno.env.get("DATABASE_URL");
  if (given) {
    say(`using DATABASE_URL from the environment: ${redact(given)}`);
    if (Object.keys(invocation.settings).length) {
      say(
        `--set ignored: the server is not ours (${
          Object.keys(invocation.settings).join(", ")
        })`,
      );
    }
  } else {
    const started = performance.now();
    try {
      server = await startPostgres({
        dataDir: invocation.keepDir,
        handleSignals: false,
        settings: invocation.settings,
      });
    } catch (error) {
      say(
        `cannot start PostgreSQL: ${
          error instanceof Error ? error.message : error
        }`,
      );
      return 1;
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const kept = invocation.keepDir ? "kept" : "temporary";
    say(
      `PostgreSQL ${server.version} on 127.0.0.1:${server.port}, started in ${seconds} s ` +
        `(${kept} data in ${server.dataDir}, log ${server.logFile})`,
    );
    env.DATABASE_URL = server.url;
  }

  try {
    if (interrupted) return 128 + (SIGNAL_NUMBERS[interrupted] ?? 1);
    const [command, ...rest] = invocation.command;
    try {
      child = new Deno.Command(command, {
        args: rest,
        env,
        stdin: "inherit",
        stdout: "inherit",
        stderr: "inherit",
      }).spawn();
    } catch (error) {
      say(
        `cannot run ${command}: ${
          error instanceof Error ? error.message : error
        }`,
      );
      return 127;
    }
    const status = await child.status;
    return status.signal
      ? 128 + (SIGNAL_NUMBERS[status.signal] ?? 1)
      : status.code;
  } finally {
    await server?.stop().catch((error) => say(`stopping PostgreSQL: ${error}`));
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
