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
 */
export function openConnection(): PostgresSql {
  const options = {
    onnotice: () => {},
    connection: { application_name: "connect-postgres-simple" },
  };
  const url = process.env.DATABASE_URL;
  return url ? postgres(url, options) : postgres(options);
}
