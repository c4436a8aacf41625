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
 * (`PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`, ...), which
 * postgres.js reads itself. Notices are dropped: the store's own
 * `IF NOT EXISTS` statements would otherwise print them.
 *
 * While the database is down, postgres.js's defaults let a call wait up to
 * 30 s for a connection attempt and its reconnect backoff grow to 20 s, which
 * also delays recovery once the database is back. Unless the URL or the
 * environment (`PGCONNECT_TIMEOUT`, `PGBACKOFF`) sets them, this pool gives up
 * on an attempt after 5 s and waits at most 1 s between attempts.
 */
export function openConnection(): PostgresSql {
  const url = process.env.DATABASE_URL;
  const options = {
    onnotice: () => {},
    connection: { application_name: "connect-postgres-simple" },
    ...unlessSet("connect_timeout", url, 5),
    ...unlessSet(
      "backoff",
      url,
      (retries: number): number => Math.min(0.05 * 2 ** retries, 1),
    ),
  };
  return url ? postgres(url, options) : postgres(options);
}

/** `{ [name]: value }`, or nothing when the URL or a `PG*` variable sets `name`. */
function unlessSet<T>(
  name: string,
  url: string | undefined,
  value: T,
): Record<string, T> {
  const inUrl = url !== undefined && new RegExp(`[?&]${name}=`).test(url);
  const inEnv = process.env[`PG${name.toUpperCase()}`] !== undefined;
  return inUrl || inEnv ? {} : { [name]: value };
}
