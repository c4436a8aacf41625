/**
 * Every statement the store runs, built once per store from its quoted table
 * name and sent as prepared statements. Times are whole seconds passed
 * through `to_timestamp`, connect-pg-simple's convention, so both stores
 * read and write `expire` the same way.
 *
 * @module
 */
import type { PostgresSql } from "./types.ts";
import type { TableNames } from "./names.ts";

/** Advisory lock class ids (first key): one for pruning, one for table creation. */
const PRUNE_LOCK = 0x63707370; // "cpsp"
const CREATE_LOCK = 0x63707363; // "cpsc"

/** The operations of one session table. */
export interface Queries {
  /** The stored JSON text of an unexpired session, or `null`. */
  get(sid: string, now: number): Promise<string | null>;
  /**
   * Like `get`, with the session's expiry in seconds as the store wrote it
   * (through the connection's `TimeZone`, as `to_timestamp` converts it).
   */
  getWithExpiry(sid: string, now: number): Promise<[string, number] | null>;
  /** Upserts a session given as JSON text. */
  set(sid: string, json: string, expire: number): Promise<void>;
  /**
   * Moves an unexpired session's expiry, unless it would move by less than
   * `touchAfter` seconds.
   */
  touch(
    sid: string,
    expire: number,
    now: number,
    touchAfter: number,
  ): Promise<void>;
  destroy(sid: string): Promise<void>;
  /** `[sid, json]` of every unexpired session. */
  all(now: number): Promise<[string, string][]>;
  ids(now: number): Promise<string[]>;
  length(now: number): Promise<number>;
  clear(): Promise<void>;
  /** How many rows the table holds, and how many of them are unexpired at `now`. */
  stats(now: number): Promise<{ total: number; live: number }>;
  /**
   * Deletes up to `limit` expired sessions in one short transaction, holding
   * the table's prune lock; resolves to the count deleted, or `null` when
   * another session holds the lock.
   */
  pruneBatch(now: number, limit: number): Promise<number | null>;
  /** Whether the table exists. */
  tableExists(): Promise<boolean>;
  /**
   * Creates the schema, table and index when missing, serialised across
   * every process by an advisory lock so concurrent starts cannot race.
   */
  createTable(): Promise<void>;
}

/** The table's DDL, with constraint and index names derived from the table. */
export function tableDefinition(names: TableNames): string[] {
  const t = names.qualified;
  return [
    `CREATE TABLE IF NOT EXISTS ${t} (
  "sid" varchar NOT NULL COLLATE "default",
  "sess" json NOT NULL,
  "expire" timestamp(6) NOT NULL,
  CONSTRAINT ${names.primaryKey} PRIMARY KEY ("sid") NOT DEFERRABLE INITIALLY IMMEDIATE
)
WITH (OIDS=FALSE)`,
    `CREATE INDEX IF NOT EXISTS ${names.expireIndex} ON ${t} ("expire")`,
  ];
}

/** The statements of one session table. */
export type StatementName =
  | "get"
  | "getWithExpiry"
  | "set"
  | "touch"
  | "destroy"
  | "all"
  | "ids"
  | "length"
  | "clear"
  | "stats"
  | "lock"
  | "pruneBatch";

/**
 * The text of every statement on one table, built once from its quoted name
 * (exported so the benchmark's raw postgres.js floor runs the very same SQL).
 */
export function statements(names: TableNames): Record<StatementName, string> {
  const t = names.qualified;
  const at = (n: number) => `to_timestamp($${n}::float8)`;
  return {
    get: `SELECT sess::text FROM ${t} WHERE sid = $1 AND expire >= ${at(2)}`,
    getWithExpiry:
      `SELECT sess::text, extract(epoch FROM expire::timestamptz)::float8 FROM ${t}
WHERE sid = $1 AND expire >= ${at(2)}`,
    set: `INSERT INTO ${t} (sid, sess, expire) VALUES ($1, $2::text::json, ${
      at(3)
    })
ON CONFLICT (sid) DO UPDATE SET sess = excluded.sess, expire = excluded.expire`,
    touch: `UPDATE ${t} SET expire = ${at(2)} WHERE sid = $1 AND expire >= ${
      at(3)
    }
AND (expire <= to_timestamp($2::float8 - $4::float8) OR expire > ${at(2)})`,
    destroy: `DELETE FROM ${t} WHERE sid = $1`,
    all: `SELECT sid, sess::text FROM ${t} WHERE expire >= ${at(1)}`,
    ids: `SELECT sid FROM ${t} WHERE expire >= ${at(1)}`,
    length: `SELECT count(*)::float8 FROM ${t} WHERE expire >= ${at(1)}`,
    clear: `DELETE FROM ${t}`,
    stats: `SELECT count(*)::float8, (count(*) FILTER (WHERE expire >= ${
      at(1)
    }))::float8 FROM ${t}`,
    lock: `SELECT pg_try_advisory_xact_lock(${PRUNE_LOCK}, hashtext($1::text))`,
    // The oldest expired rows through the expire index, deleted by ctid: each
    // batch costs its own size, never a scan of the table (a `sid IN (...)`
    // here was planned as a hash join over every row, once per batch).
    pruneBatch: `DELETE FROM ${t} WHERE ctid = ANY(ARRAY(
  SELECT ctid FROM ${t} WHERE expire < ${at(1)}
  ORDER BY expire LIMIT $2::int4 FOR UPDATE SKIP LOCKED))`,
  };
}

/** Builds the statements of one table once, bound to one `sql`. */
export function createQueries(sql: PostgresSql, names: TableNames): Queries {
  const t = names.qualified;
  const text = statements(names);
  const prepared = { prepare: true } as const;
  const run = (query: string, params: (string | number)[]) =>
    sql.unsafe(query, params, prepared);
  const values = async (query: string, params: (string | number)[]) =>
    (await run(query, params).values()) as unknown as unknown[][];

  // The per-request statements chain on the query with `then` rather than
  // `await` it in an async function: a postgres.js query is a Promise
  // subclass, and awaiting one costs an extra promise and two extra turns.
  const firstValue = (rows: unknown[][]) =>
    rows.length ? rows[0][0] as string : null;
  const nothing = () => {};

  return {
    get(sid, now) {
      return run(text.get, [sid, now]).values().then(firstValue);
    },
    getWithExpiry(sid, now) {
      return run(text.getWithExpiry, [sid, now]).values().then((rows) =>
        rows.length ? [rows[0][0] as string, rows[0][1] as number] : null
      );
    },
    set(sid, json, expire) {
      return run(text.set, [sid, json, expire]).then(nothing);
    },
    touch(sid, expire, now, touchAfter) {
      return run(text.touch, [sid, expire, now, touchAfter]).then(nothing);
    },
    destroy(sid) {
      return run(text.destroy, [sid]).then(nothing);
    },
    async all(now) {
      return (await values(text.all, [now])) as [string, string][];
    },
    async ids(now) {
      return (await values(text.ids, [now])).map((row) => row[0] as string);
    },
    async length(now) {
      const rows = await values(text.length, [now]);
      return Number(rows[0][0]);
    },
    async clear() {
      await sql.unsafe(text.clear);
    },
    async stats(now) {
      const [[total, live]] = await values(text.stats, [now]);
      return { total: Number(total), live: Number(live) };
    },
    pruneBatch(now, limit) {
      return sql.begin(async (tx) => {
        const [[locked]] = await tx.unsafe(text.lock, [t], prepared).values();
        if (!locked) return null;
        return (await tx.unsafe(text.pruneBatch, [now, limit], prepared)).count;
      }) as Promise<number | null>;
    },
    async tableExists() {
      const [[exists]] = await sql.unsafe(
        "SELECT to_regclass($1::text) IS NOT NULL",
        [t],
        prepared,
      ).values();
      return exists as boolean;
    },
    async createTable() {
      await sql.begin(async (tx) => {
        await tx.unsafe(
          `SELECT pg_advisory_xact_lock(${CREATE_LOCK}, hashtext($1::text))`,
          [t],
        );
        await tx.unsafe("SET LOCAL client_min_messages = warning");
        if (names.quotedSchema) {
          const [[missing]] = await tx.unsafe(
            "SELECT to_regnamespace($1::text) IS NULL",
            [names.quotedSchema],
          ).values();
          if (missing) {
            await tx.unsafe(
              `CREATE SCHEMA IF NOT EXISTS ${names.quotedSchema}`,
            );
          }
        }
        for (const statement of tableDefinition(names)) {
          await tx.unsafe(statement);
        }
      });
    },
  };
}
