/**
 * The store's own postgres.js connection, for when the user passes none.
 *
 * @module
 */
import postgres from "postgres";
import process from "node:process";
import type { PostgresSql } from "./types.ts";

/**
 * Opens a pool from `DATABASE_URL`, or else from the `PG*` variables
 * (`PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`, `PGAPPNAME`,
 * ...), which postgres.js reads itself. Notices are dropped: the store's own
 * `IF NOT EXISTS` statements would otherwise print them.
 *
 * While the database is down, postgres.js's defaults let a call wait up to
 * 30 s for a connection attempt and its reconnect backoff grow to 20 s, which
 * also delays recovery once the database is back. Unless the URL or the
 * environment (`PGCONNECT_TIMEOUT`, `PGBACKOFF`) sets them, this pool gives up
 * on an attempt after 5 s, waits at most 1 s between attempts, and closes
 * connections idle for {@linkcode IDLE_TIMEOUT_SECONDS} (`PGIDLE_TIMEOUT`,
 * `idle_timeout` in the URL). Its connections are named
 * `connect-postgres-simple` unless `PGAPPNAME` or the URL's
 * `application_name` names them. A multi-host URL asking for `read-write`
 * gets `primary` instead (see `primaryForReadWrite` below).
 */
export function openConnection(): PostgresSql {
  const url = process.env.DATABASE_URL;
  const named = process.env.PGAPPNAME !== undefined ||
    (url !== undefined && /[?&]application_name=/.test(url));
  const options = {
    onnotice: () => {},
    ...(named
      ? {}
      : { connection: { application_name: "connect-postgres-simple" } }),
    ...unlessSet("connect_timeout", url, 5),
    // postgres.js 3.4.9 drops the promise of the array-types query it runs
    // on each new connection: a backend terminated during it becomes an
    // unhandled rejection. The store binds no arrays, so it needs none.
    ...unlessSet("fetch_types", url, false),
    ...unlessSet("idle_timeout", url, IDLE_TIMEOUT_SECONDS),
    ...primaryForReadWrite(url),
    ...unlessSet(
      "backoff",
      url,
      (retries: number): number => Math.min(0.05 * 2 ** retries, 1),
    ),
  };
  return url ? postgres(url, options) : postgres(options);
}

/**
 * Seconds an idle connection of the store's own pool stays open: below the
 * idle limits servers and proxies commonly impose (PostgreSQL's
 * `idle_session_timeout` as usually set, cloud load balancers' 350 s and
 * more), so the pool closes it before they cut it silently.
 */
export const IDLE_TIMEOUT_SECONDS = 30;

/**
 * postgres.js 3.4.9 judges `target_session_attrs=read-write` by
 * `default_transaction_read_only` alone, which a hot standby of PostgreSQL
 * 14+ reports as `off`: after a failover its pool can settle on the standby
 * and fail every write. `primary` asks whether the server is in recovery,
 * which is what read-write means for a multi-host URL; the store's own pool
 * uses it instead.
 */
function primaryForReadWrite(
  url: string | undefined,
): { target_session_attrs?: "primary" } {
  const inUrl = url && /[?&]target_session_attrs=([^&#]*)/.exec(url)?.[1];
  const asked = inUrl || process.env.PGTARGETSESSIONATTRS;
  return asked === "read-write" ? { target_session_attrs: "primary" } : {};
}

/**
 * `{ [name]: value }`, or nothing when the URL or the `PG*` variable of that
 * setting (e.g. `connect_timeout` and `PGCONNECT_TIMEOUT`) sets it, so that
 * what a deployment configures wins over the store's default.
 *
 * @example
 * ```ts
 * import { unlessSet } from "./connection.ts";
 * unlessSet("connect_timeout", "postgres://h/db?connect_timeout=9", 5, {}); // => {}
 * unlessSet("connect_timeout", "postgres://h/db", 5, {}); // => { connect_timeout: 5 }
 * ```
 */
export function unlessSet<T>(
  name: string,
  url: string | undefined,
  value: T,
  env: Record<string, string | undefined> = process.env,
): Record<string, T> {
  const inUrl = url !== undefined && new RegExp(`[?&]${name}=`).test(url);
  const inEnv = env[`PG${name.toUpperCase()}`] !== undefined;
  return inUrl || inEnv ? {} : { [name]: value };
}

/** What a listening connection reports. */
export interface ListenerHandlers {
  /** A notification arrived on a channel the connection listens on. */
  onnotify(channel: string, payload: string): void;
  /** The connection closed, or an attempt to open it failed. */
  onclose(): void;
}

/**
 * A dedicated connection (`max: 1`, never idle-closed) with the settings of
 * `source`, for `LISTEN`: a notification and the connection's closing both
 * reach `handlers`. postgres.js's own `sql.listen` makes its connection the
 * same way, from the parsed options of its `sql`, which postgres.js takes
 * back as they are; unlike `sql.listen`, this one says when it closes, so
 * the read cache knows when it may have missed a notification.
 */
export function openListenerConnection(
  source: PostgresSql,
  handlers: ListenerHandlers,
): PostgresSql {
  // Typed for options as users write them; at run time postgres() also
  // takes the parsed options of another instance (its `shared` marks them).
  const fromParsed = postgres as (options: object) => PostgresSql;
  return fromParsed({
    ...source.options,
    max: 1,
    idle_timeout: null,
    max_lifetime: null,
    fetch_types: false,
    // The listener paces its own attempts: postgres.js's reconnect delay is a
    // timer that end() does not cancel, after which a connection closed
    // meanwhile would open again and keep the process alive.
    backoff: 0,
    onnotice: () => {},
    onnotify: handlers.onnotify,
    onclose: handlers.onclose,
  });
}
