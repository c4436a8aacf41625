/**
 * connect-pg-simple 10 and this store side by side, on one table of one
 * server: the helpers the `compat_*_test.ts` files share. Together they show
 * that what one store writes the other reads, that both agree on expiry,
 * pruning, names and table creation, and pin down every difference
 * (docs/migrating.md lists them with their reasons).
 *
 * @module
 */
import assert from "node:assert/strict";
import session from "express-session";
import type { SessionData } from "express-session";
import connectPgSimple from "connect-pg-simple";
import pg from "pg";
import {
  connect,
  DATABASE_URL,
  sessionData,
  storeTest,
  type TestBed,
} from "./_helpers.ts";

/** connect-pg-simple's store, as far as these tests use it (the package ships no types). */
export interface PgStore {
  ttl: number | undefined;
  get(sid: string, cb: (err: Error | null, sess?: unknown) => void): void;
  set(sid: string, sess: unknown, cb?: (err: Error | null) => void): void;
  destroy(sid: string, cb?: (err: Error | null) => void): void;
  touch(sid: string, sess: unknown, cb?: (err: Error | null) => void): void;
  pruneSessions(cb?: (err: Error | null) => void): void;
  quotedTable(): string;
  close(): Promise<void>;
}

/** connect-pg-simple's options used here. */
export interface PgStoreOptions {
  pool?: PgPool;
  schemaName?: string;
  tableName?: string;
  ttl?: number;
  createTableIfMissing?: boolean;
  pruneSessionInterval?: number | false;
  pruneSessionRandomizedInterval?: false | ((delayMs: number) => number);
  disableTouch?: boolean;
  errorLog?: (...args: unknown[]) => void;
}

/** A `pg` pool, as far as these tests use it. */
export interface PgPool {
  end(): Promise<void>;
}

/** This store, as a side-by-side test makes it. */
export type OurStore = ReturnType<TestBed["store"]>;
/** This store's options. */
export type OurOptions = NonNullable<Parameters<TestBed["store"]>[0]>;
/** A postgres.js connection. */
export type Sql = ReturnType<typeof connect>;

/** connect-pg-simple's store class, made from express-session. */
export const PgStoreClass = (connectPgSimple as (s: unknown) => new (
  options: PgStoreOptions,
) => PgStore)(session);

/** What a side-by-side test gets on top of {@linkcode TestBed}. */
export interface CompatBed extends TestBed {
  /** A pg pool on the test server, ended after the test. */
  pool: PgPool;
  /** A connect-pg-simple store on the test's table (no pruning unless asked), closed after the test. */
  pgStore(options?: PgStoreOptions): PgStore;
  /** A pg pool with extra settings (e.g. `options: "-c TimeZone=..."`), ended after the test. */
  newPool(config?: Record<string, unknown>): PgPool;
  /** A postgres.js connection with extra settings, ended after the test. */
  newSql(options?: Parameters<typeof connect>[0]): Sql;
}

export function compatTest(
  name: string,
  fn: (bed: CompatBed) => Promise<void>,
  options?: { createTable?: boolean; skip?: string | false },
): void {
  storeTest(name, async (bed) => {
    const pools: PgPool[] = [];
    const sqls: Sql[] = [];
    const pgStores: PgStore[] = [];
    const ours: OurStore[] = [];
    const newPool = (config: Record<string, unknown> = {}): PgPool => {
      const pool = new pg.Pool({
        connectionString: DATABASE_URL,
        max: 2,
        ...config,
      }) as PgPool;
      pools.push(pool);
      return pool;
    };
    const pool = newPool();
    try {
      await fn({
        ...bed,
        pool,
        newPool,
        newSql(options) {
          const sql = connect(options);
          sqls.push(sql);
          return sql;
        },
        store(options) {
          const store = bed.store(options);
          ours.push(store);
          return store;
        },
        pgStore(options = {}) {
          const store = new PgStoreClass({
            pool,
            schemaName: bed.schema,
            pruneSessionInterval: false,
            ...options,
          });
          pgStores.push(store);
          return store;
        },
      });
    } finally {
      await Promise.allSettled([...pgStores, ...ours].map((s) => s.close()));
      await Promise.allSettled(pools.map((p) => p.end()));
      await Promise.allSettled(sqls.map((s) => s.end()));
    }
  }, options);
}

/** Turns a connect-pg-simple call into a promise of its callback's result. */
export function pgCall<T = void>(
  fn: (cb: (err: Error | null, result?: T) => void) => void,
): Promise<T | undefined> {
  return new Promise((resolve, reject) =>
    fn((err, result) => err ? reject(err) : resolve(result))
  );
}

/** connect-pg-simple's `get`, with "no session" as `null` like ours. */
export async function pgGet(store: PgStore, sid: string): Promise<unknown> {
  return (await pgCall<unknown>((cb) => store.get(sid, cb))) ?? null;
}

/** A session as it comes back from JSON (Dates become strings). */
export function stored<T>(value: T): T {
  return JSON.parse(JSON.stringify(value));
}

/** A row's raw columns as PostgreSQL holds them. */
export async function rawRow(
  sql: Sql,
  table: string,
  sid: string,
): Promise<{ sess: string; expire: string } | undefined> {
  const [row] = await sql.unsafe(
    `SELECT sess::text AS sess, expire::text AS expire FROM ${table} WHERE sid = $1`,
    [sid],
  );
  return row ? { sess: row.sess, expire: row.expire } : undefined;
}

/** The session ids in a table, sorted. */
export async function sids(sql: Sql, table: string): Promise<string[]> {
  const rows = await sql.unsafe(`SELECT sid FROM ${table} ORDER BY sid`);
  return rows.map((row) => row.sid as string);
}

/** Runs `fn` while capturing `console.warn`; resolves to the warnings. */
export function captureWarnings(fn: () => void): string[] {
  const warnings: string[] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => {
    warnings.push(args.map(String).join(" "));
  };
  try {
    fn();
  } finally {
    console.warn = original;
  }
  return warnings;
}

/** Resolves when `predicate` holds, polling; rejects after `ms`. */
export async function until(
  predicate: () => boolean,
  what: string,
  ms = 5000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** connect-pg-simple's warning for the legacy `'schema"."table'` form. */
export const DEPRECATION =
  'DEPRECATION WARNING: Schema should be provided through its dedicated "schemaName" option rather than through "tableName"';

/** Sessions of every shape both stores must agree on. */
export const CASES: Record<string, SessionData> = {
  "with cookie.expires": sessionData({ user: "ada", visits: 3 }),
  "without cookie.expires": sessionData({ user: "bob" }, null),
  "nested": sessionData({
    deep: { a: [1, { b: [null, true, 1.5e300, -0] }], c: { d: { e: {} } } },
  }),
  "unicode": sessionData({
    text: 'héllo wörld — 日本語 🎉 \u0000 \u2028 "quoted" \\ back',
    "ключ 🔑": "значение",
  }),
  "large": sessionData({
    big: "x".repeat(1024 * 1024),
    list: [...Array(5000).keys()],
  }),
};

/** Each store reads a session the other wrote, on the tables they were given. */
export async function roundTrip(
  ours: OurStore,
  theirs: PgStore,
): Promise<void> {
  const [one, two] = [sessionData({ by: "pg" }), sessionData({ by: "ours" })];
  await pgCall((cb) => theirs.set("from-pg", one, cb));
  await ours.set("from-ours", two);
  assert.deepEqual(await ours.get("from-pg"), stored(one));
  assert.deepEqual(await pgGet(theirs, "from-ours"), stored(two));
}
