/**
 * What `bench.ts` compares, on one table: this store, connect-pg-simple 10
 * on a `pg` pool of the same size, and the floor (the store's own SQL sent
 * straight through postgres.js as prepared statements, no store layer); and
 * the workloads it runs on each.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import postgres from "postgres";
import pg from "pg";
import session from "express-session";
import type { SessionData } from "express-session";
import connectPgSimple from "connect-pg-simple";
import connectPostgresSimple from "../../mod.ts";
import { resolveTableNames } from "../../src/names.ts";
import { statements } from "../../src/queries.ts";

/** The operations every subject offers, promise-shaped. */
export interface Subject {
  get(sid: string): Promise<unknown>;
  set(sid: string, sess: SessionData): Promise<unknown>;
  touch(sid: string, sess: SessionData): Promise<unknown>;
  destroy(sid: string): Promise<unknown>;
}

/** A subject with the pool it owns. */
export interface OpenSubject extends Subject {
  close(): Promise<void>;
}

/** Everything the bench can measure. */
export type SubjectKind =
  | "store"
  | "store, touchAfter 60"
  | "store, touchAfter 60, synchronous_commit off"
  | "store, touchAfter 60, cache"
  | "store, touchAfter 60, cache, synchronous_commit off"
  | "connect-pg-simple"
  | "floor"
  | "floor, touchAfter 60"
  | "floor, max_pipeline 0";

/** Pool size of every subject (postgres.js's default `max`). */
export const POOL_SIZE = 10;
/** Sessions in the table. */
export const SESSION_COUNT = 10_000;
const MAX_AGE_MS = 86_400_000;

/** Calls a Node-style store method as express-session does, as a promise. */
function viaCallback(
  call: (callback: (error: unknown, value?: unknown) => void) => void,
): Promise<unknown> {
  return new Promise((resolve, reject) =>
    call((error, value) => error ? reject(error) : resolve(value))
  );
}

/** Wraps a callback-style express-session store. */
export function callbackStore(store: {
  get(sid: string, cb: (e: unknown, v?: unknown) => void): void;
  set(sid: string, s: SessionData, cb: (e: unknown) => void): void;
  touch(sid: string, s: SessionData, cb: (e: unknown) => void): void;
  destroy(sid: string, cb: (e: unknown) => void): void;
}): Subject {
  return {
    get: (sid) => viaCallback((cb) => store.get(sid, cb)),
    set: (sid, sess) => viaCallback((cb) => store.set(sid, sess, cb)),
    touch: (sid, sess) => viaCallback((cb) => store.touch(sid, sess, cb)),
    destroy: (sid) => viaCallback((cb) => store.destroy(sid, cb)),
  };
}

/**
 * The floor: the store's statements, nothing else, on a postgres.js `sql`
 * (writes with no cutoff: `Infinity`).
 */
function floorSubject(
  sql: postgres.Sql,
  text: ReturnType<typeof statements>,
  touchAfter: number,
): Subject {
  const prepared = { prepare: true } as const;
  const seconds = (sess: SessionData) =>
    Math.ceil(new Date(sess.cookie.expires!).valueOf() / 1000);
  return {
    async get(sid) {
      const rows = await sql.unsafe(
        text.get,
        [sid, Math.ceil(Date.now() / 1000)],
        prepared,
      ).values();
      return rows.length ? JSON.parse(rows[0][0]) : null;
    },
    set: (sid, sess) =>
      sql.unsafe(
        text.set,
        [sid, JSON.stringify(sess), seconds(sess), Infinity],
        prepared,
      ),
    touch: (sid, sess) =>
      sql.unsafe(
        text.touch,
        [
          sid,
          seconds(sess),
          Math.ceil(Date.now() / 1000),
          touchAfter,
          Infinity,
        ],
        prepared,
      ),
    destroy: (sid) => sql.unsafe(text.destroy, [sid, Infinity], prepared),
  };
}

/**
 * Opens one subject, with a fresh pool of its own, on `schema`'s `session`
 * table, and opens all its connections. The store opens its own pool from
 * `DATABASE_URL`, as it does for a user who passes none.
 */
export async function openSubject(
  kind: SubjectKind,
  url: string,
  schema: string,
): Promise<OpenSubject> {
  const common = { schemaName: schema, pruneSessionInterval: false } as const;
  let subject: OpenSubject;
  if (kind.startsWith("store")) {
    // synchronous_commit off as a user would set it for the store alone: on
    // the connection (for the store's own pool: ?synchronous_commit=off in
    // DATABASE_URL).
    const sql = kind.endsWith("synchronous_commit off")
      ? postgres(url, {
        max: POOL_SIZE,
        onnotice: () => {},
        connection: { synchronous_commit: "off" },
      })
      : undefined;
    const store = new (connectPostgresSimple(session))({
      ...common,
      touchAfter: kind === "store" ? 0 : 60,
      cache: kind.includes("cache"),
      ...(sql ? { postgres: sql } : {}),
    });
    subject = {
      ...callbackStore(store as never),
      async close() {
        await store.close();
        await sql?.end();
      },
    };
  } else if (kind === "connect-pg-simple") {
    const pool = new pg.Pool({
      connectionString: url,
      max: POOL_SIZE,
      idleTimeoutMillis: 0,
    });
    const store = new (connectPgSimple(session))({ pool, ...common });
    subject = {
      ...callbackStore(store as never),
      async close() {
        await store.close();
        await pool.end();
      },
    };
  } else {
    const sql = postgres(url, {
      max: POOL_SIZE,
      onnotice: () => {},
      ...(kind === "floor, max_pipeline 0" ? { max_pipeline: 0 } : {}),
    });
    const text = statements(resolveTableNames(schema, "session", () => {}));
    const touchAfter = kind === "floor, touchAfter 60" ? 60 : 0;
    subject = {
      ...floorSubject(sql, text, touchAfter),
      close: () => sql.end(),
    };
  }
  await Promise.all(
    Array.from({ length: 4 * POOL_SIZE }, () => subject.get("warm-up")),
  );
  return subject;
}

/** The bench's sessions: ids, and one ~300-byte session object per id. */
export interface SessionSet {
  sids: string[];
  sessions: SessionData[];
  /** The session for index `i`, its cookie moved on so a touch always writes. */
  fresh(i: number): SessionData;
  /**
   * Starts the expiries over from now: forgets earlier writes and returns
   * the expiry (epoch seconds) a table should be given to match.
   */
  rebase(): number;
}

/**
 * Makes `count` sessions of about 300 bytes of JSON. Each `fresh(i)` sets
 * the cookie's expiry to now + one day + (one second per earlier write of
 * that session): the expiry always moves forward, so with `touchAfter: 0`
 * every touch writes, as connect-pg-simple's always does, while with
 * `touchAfter: 60` only one touch a minute per session writes.
 */
export function makeSessions(count: number): SessionSet {
  const sids: string[] = [];
  const sessions: SessionData[] = [];
  const bumps = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    sids.push(`bench-${i.toString(36).padStart(4, "0")}-${"x".repeat(24)}`);
    sessions.push({
      cookie: {
        originalMaxAge: MAX_AGE_MS,
        expires: new Date(Date.now() + MAX_AGE_MS),
        secure: false,
        httpOnly: true,
        path: "/",
        sameSite: "lax",
      },
      userId: 100_000 + i,
      csrfSecret: "q8Jx2nV0cLr7TzK1pW9sYb4E",
      roles: ["customer"],
      prefs: { theme: "dark", lang: "en-GB", currency: "EUR" },
      cart: { items: 3, total: 4797 },
      flash: {},
    } as unknown as SessionData);
  }
  return {
    sids,
    sessions,
    fresh(i) {
      const sess = sessions[i];
      sess.cookie.expires = new Date(
        Date.now() + MAX_AGE_MS + ++bumps[i] * 1000,
      );
      return sess;
    },
    rebase() {
      bumps.fill(0);
      return Math.ceil((Date.now() + MAX_AGE_MS) / 1000);
    },
  };
}

/** One operation of a workload on a subject, for session index `i`. */
export type Workload = (
  s: Subject,
  set: SessionSet,
  i: number,
) => Promise<unknown>;

/** The workloads, by the name the tables show. */
export const WORKLOADS: Record<string, Workload> = {
  get: (s, set, i) => s.get(set.sids[i]),
  set: (s, set, i) => s.set(set.sids[i], set.fresh(i)),
  touch: (s, set, i) => s.touch(set.sids[i], set.fresh(i)),
  "destroy+set": async (s, set, i) => {
    await s.destroy(set.sids[i]);
    await s.set(set.sids[i], set.fresh(i));
  },
  // An express-session request: read the session, then touch it, or save it
  // one time in ten (a request that changed the session).
  "request mix": async (s, set, i) => {
    await s.get(set.sids[i]);
    if (Math.random() < 0.1) await s.set(set.sids[i], set.fresh(i));
    else await s.touch(set.sids[i], set.fresh(i));
  },
};

/**
 * Recreates schema `schema` with table.sql's `"session"` table in it, filled
 * with `sessions` (each expiring with its cookie) and analyzed.
 */
export async function fillSessionTable(
  admin: postgres.Sql,
  schema: string,
  sessions: SessionSet,
): Promise<void> {
  const table = `"${schema}"."session"`;
  const tableSql = readFileSync(
    new URL("../../table.sql", import.meta.url),
    "utf8",
  );
  await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.unsafe(`CREATE SCHEMA "${schema}"`);
  await admin.unsafe(tableSql.replaceAll('"session"', table));
  await admin.unsafe(
    `INSERT INTO ${table} (sid, sess, expire)
     SELECT sid, sess::json, to_timestamp(expire)
     FROM unnest($1::text[], $2::text[], $3::float8[]) AS t(sid, sess, expire)`,
    [
      sessions.sids,
      sessions.sessions.map((s) => JSON.stringify(s)),
      sessions.sessions.map((s) =>
        Math.ceil(new Date(s.cookie.expires!).valueOf() / 1000)
      ),
    ],
  );
  await admin.unsafe(`VACUUM ANALYZE ${table}`);
}
