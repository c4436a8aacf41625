/**
 * What every test shares: a connection to the test server and a fresh schema
 * per test, holding a session table made from `table.sql`.
 *
 * @module
 */
import { test } from "node:test";
import process from "node:process";
import { readFileSync } from "node:fs";
import postgres from "postgres";
import session from "express-session";
import type { SessionData } from "express-session";
import connectPostgresSimple, {
  type PostgresSql,
  type PostgresStore,
  type PostgresStoreOptions,
} from "../mod.ts";

export { connectPostgresSimple };
export type { PostgresSql, PostgresStore, PostgresStoreOptions };

/** The server under test; `deno task test` starts one when none is given. */
export const DATABASE_URL: string = (() => {
  const url = process.env.DATABASE_URL;
  if (!url) {
    throw new Error(
      "DATABASE_URL is not set: run the tests with `deno task test`, which starts a throwaway PostgreSQL",
    );
  }
  return url;
})();

/**
 * Whether the tests run behind PgBouncer in transaction mode (`.ci/with_pgbouncer`
 * sets `PG_PREPARE=false`): a test that needs its own session settings or
 * counts server backends cannot run there.
 */
export const BEHIND_PGBOUNCER: boolean = process.env.PG_PREPARE === "false";

/**
 * Why a test that stops or restarts the server under load is skipped under
 * Bun: there postgres.js 3.4.9 can throw an uncaught `TypeError: null is not
 * an object (evaluating 'socket.write')` from a write it scheduled
 * (`nextWrite` in its connection.js) on a connection the restart closed
 * (seen in CI; docs/frameworks.md). `false` elsewhere.
 */
export const BUN_RESTART_DEFECT: string | false = "Bun" in globalThis &&
  "postgres.js can throw an uncaught TypeError under Bun when the server restarts under load";

/** The store class under test. */
export const PostgresStoreClass: ReturnType<typeof connectPostgresSimple> =
  connectPostgresSimple(
    session,
  );

/** `table.sql` as shipped. */
export const TABLE_SQL: string = readFileSync(
  new URL("../table.sql", import.meta.url),
  "utf8",
);

/** Opens a connection to the test server; the caller ends it. */
export function connect(
  options: postgres.Options<Record<string, never>> = {},
): PostgresSql {
  return postgres(DATABASE_URL, { onnotice: () => {}, max: 4, ...options });
}

/** What a test gets: its own schema, a session table in it, and a way to make stores. */
export interface TestBed {
  /** A connection for the test's own checks. */
  sql: PostgresSql;
  /** The test's schema (unquoted), holding a `session` table from `table.sql`. */
  schema: string;
  /** `"schema"."session"`. */
  table: string;
  /** A store on the test's table (no automatic pruning unless asked); closed after the test. */
  store(options?: PostgresStoreOptions): PostgresStore;
  /** The row of a session id: its stored JSON text and expiry in seconds, or `undefined`. */
  row(
    sid: string,
    table?: string,
  ): Promise<{ sess: string; expire: number } | undefined>;
  /** Inserts a row directly, bypassing the store. */
  insert(sid: string, sess: string, expireSeconds: number): Promise<void>;
  /**
   * Inserts `count` rows `<prefix>-1` ... `<prefix>-<count>` with an empty
   * session, expiring `inSeconds` from now (negative: already expired).
   */
  fill(prefix: string, count: number, inSeconds: number): Promise<void>;
}

let counter = 0;

/** A unique, lower-case name for this test run. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${counter++}`;
}

/**
 * Declares a test that runs on a fresh schema with a `session` table made by
 * `table.sql`; the schema is dropped and every store closed afterwards.
 */
export function storeTest(
  name: string,
  fn: (bed: TestBed) => Promise<void>,
  { createTable = true, skip = false }: {
    createTable?: boolean;
    skip?: string | false;
  } = {},
): void {
  test(name, { skip }, async () => {
    const sql = connect();
    const schema = uniqueName("t");
    const table = `"${schema}"."session"`;
    const stores: PostgresStore[] = [];
    try {
      await sql.unsafe(`CREATE SCHEMA "${schema}"`);
      if (createTable) {
        await sql.unsafe(TABLE_SQL.replaceAll('"session"', table));
      }
      await fn({
        sql,
        schema,
        table,
        store(options = {}) {
          const store = new PostgresStoreClass({
            postgres: sql,
            schemaName: schema,
            pruneSessionInterval: false,
            ...options,
          });
          stores.push(store);
          return store;
        },
        async row(sid, from = table) {
          const [row] = await sql.unsafe(
            `SELECT sess::text AS sess, extract(epoch FROM expire::timestamptz)::float8 AS expire FROM ${from} WHERE sid = $1`,
            [sid],
          );
          return row ? { sess: row.sess, expire: row.expire } : undefined;
        },
        async fill(prefix, count, inSeconds) {
          await sql.unsafe(
            `INSERT INTO ${table} (sid, sess, expire)
             SELECT $1::text || '-' || i, '{}', to_timestamp($2::float8)
             FROM generate_series(1, $3::int4) i`,
            [prefix, nowSeconds() + inSeconds, count],
          );
        },
        async insert(sid, sess, expire) {
          await sql.unsafe(
            `INSERT INTO ${table} (sid, sess, expire) VALUES ($1, $2::text::json, to_timestamp($3::float8))`,
            [sid, sess, expire],
          );
        },
      });
    } finally {
      await Promise.allSettled(stores.map((store) => store.close()));
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(
        () => {},
      );
      await sql.end({ timeout: 5 });
    }
  });
}

/** A session as express-session would hand it over, expiring `inSeconds` from now. */
export function sessionData(
  data: Record<string, unknown> = {},
  inSeconds: number | null = 3600,
): SessionData {
  const cookie = inSeconds === null
    ? { originalMaxAge: null, httpOnly: true, path: "/" }
    : {
      originalMaxAge: inSeconds * 1000,
      expires: new Date(Date.now() + inSeconds * 1000).toISOString(),
      httpOnly: true,
      path: "/",
    };
  return { cookie, ...data } as unknown as SessionData;
}

/** Now, in whole seconds, as the store counts. */
export function nowSeconds(): number {
  return Math.ceil(Date.now() / 1000);
}

/** Calls `fn` with a Node-style callback and resolves to what it was called with. */
export function viaCallback<T>(
  fn: (callback: (error: Error | null, result?: T) => void) => unknown,
): Promise<{ error: Error | null; result: T | undefined; calls: number }> {
  return new Promise((resolve) => {
    let calls = 0;
    fn((error, result) => {
      calls++;
      resolve({ error, result, calls });
    });
  });
}
