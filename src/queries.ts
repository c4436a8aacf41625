/**
 * Every statement the store runs on its table, built once per store from
 * its quoted name and sent as prepared statements. Times are whole seconds
 * passed through `to_timestamp`, connect-pg-simple's convention, so both
 * stores read and write `expire` the same way.
 *
 * Every write carries a cutoff, a time in the server's clock: the statement
 * checks the clock after its rows are written and, past the cutoff, fails
 * instead of committing. So a write that was queued or delayed past its
 * call's deadline never applies (see `calls.ts`). A write's answer is the
 * number of rows it changed and the server's clock at the check, which
 * calibrates the next cutoff (`server_clock.ts`).
 *
 * @module
 */
import type { PostgresSql } from "./types.ts";
import type { TableNames } from "./names.ts";
import { ownerExpression } from "./user_key.ts";

/** Advisory lock class id (first key) for pruning: "cpsp". */
const PRUNE_LOCK = 0x63707370;

/** The text a write refused at its cutoff carries in its error message. */
const REFUSAL =
  "connect-postgres-simple: write refused, past the cutoff of its call";

/**
 * The error of a statement that postgres.js answered without running it:
 * 3.4.9 can hand a query to a connection whose socket has just failed, then
 * resolve it with an empty result (no command) when that connection opens
 * again. Taken as a read, it would show a live session as missing; as a
 * write, it would acknowledge what never ran. It is transient: the call
 * tries again.
 */
export class NotRunError extends Error {
  /** Always `"NOT_RUN"`. */
  readonly code = "NOT_RUN";

  /** Describes the statement that did not run. */
  constructor() {
    super(
      "connect-postgres-simple: postgres.js answered a statement without running it (a connection lost mid-send)",
    );
    this.name = "NotRunError";
  }
}

/** The rows of a result that really ran; throws {@linkcode NotRunError} otherwise. */
function ran<R extends { command: string }>(result: R): R {
  if (!result.command) throw new NotRunError();
  return result;
}

/** Whether `error` is a write's refusal to apply past its cutoff. */
export function isRefusedWrite(error: unknown): boolean {
  const { code, message } = error as { code?: unknown; message?: unknown };
  return code === "22P02" && typeof message === "string" &&
    message.includes(REFUSAL);
}

/**
 * A write's answer: rows changed, the server's clock (epoch seconds) when it
 * checked its cutoff, and its transaction's id (`null` when it changed
 * nothing), which the notify trigger sends too: the read cache tells its own
 * writes' notifications by it. Some writes add what the cache must know of
 * the rows they changed (`Extra`).
 */
export type WriteResult<Extra extends unknown[] = []> = [
  count: number,
  serverSeconds: number,
  transaction: string | null,
  ...extra: Extra,
];

/** The answer of any write, whatever it adds. */
export type AnyWriteResult = WriteResult<unknown[]>;

/**
 * The answer of a write of one session, with the expiry it wrote (epoch
 * seconds; `null` when it changed nothing): with `maxLifetime`, capped at
 * the end of the session's lifetime.
 */
export type ExpiryWriteResult = WriteResult<[expire: number | null]>;

/** The answer of `destroyOf`, with the ids of the sessions it deleted. */
export type DeletedWriteResult = WriteResult<[deleted: string[]]>;

/** Where queries run; the store's own pool may replace its `sql` after a fault. */
export interface Database {
  /** The postgres.js instance to send the next statement to. */
  readonly sql: PostgresSql;
}

/** The operations of one session table. Times are epoch seconds. */
export interface Queries {
  /** The server's clock, in seconds since the epoch. */
  clock(): Promise<number>;
  /** Sends a notification (the read cache's check that its listener hears the table's). */
  notify(channel: string, payload: string): Promise<void>;
  /** The stored JSON text of an unexpired session, or `null`. */
  get(sid: string, now: number): Promise<string | null>;
  /**
   * Like `get`, with the session's expiry in seconds as the store wrote it
   * (through the connection's `TimeZone`, as `to_timestamp` converts it),
   * and the end of its lifetime if sooner (with `maxLifetime`; else its
   * expiry again): until then `get` returns it.
   */
  getWithExpiry(
    sid: string,
    now: number,
  ): Promise<[json: string, expire: number, until: number] | null>;
  /** Upserts a session given as JSON text. */
  set(
    sid: string,
    json: string,
    expire: number,
    cutoff: number,
  ): Promise<ExpiryWriteResult>;
  /**
   * Moves an unexpired session's expiry, unless it would move by less than
   * `touchAfter` seconds.
   */
  touch(
    sid: string,
    expire: number,
    now: number,
    touchAfter: number,
    cutoff: number,
  ): Promise<ExpiryWriteResult>;
  destroy(sid: string, cutoff: number): Promise<WriteResult>;
  /** `[sid, json]` of every unexpired session. */
  all(now: number): Promise<[string, string][]>;
  ids(now: number): Promise<string[]>;
  length(now: number): Promise<number>;
  clear(cutoff: number): Promise<WriteResult>;
  /** `[sid, json]` of every unexpired session whose owner is `owner` (needs `userKey`). */
  sessionsOf(owner: string, now: number): Promise<[string, string][]>;
  /**
   * Deletes every session of `owner`, expired or not, but `except` (needs
   * `userKey`).
   */
  destroyOf(
    owner: string,
    except: string | null,
    cutoff: number,
  ): Promise<DeletedWriteResult>;
  /** How many rows the table holds, and how many of them are unexpired at `now`. */
  stats(now: number): Promise<{ total: number; live: number }>;
  /**
   * Deletes up to `limit` sessions expired both at `now` and by the server's
   * clock (with `maxLifetime`, up to `limit` more past their lifetime by
   * both clocks), in one short transaction holding the table's prune lock; resolves
   * to the count deleted, or `null` when another session holds the lock.
   * Waits at most `lockTimeoutMs` (when finite) for a lock on the table.
   */
  pruneBatch(
    now: number,
    limit: number,
    cutoff: number,
    lockTimeoutMs: number,
  ): Promise<number | null>;
}

/** The statements of one session table. */
export type StatementName =
  | "clock"
  | "notify"
  | "get"
  | "getWithExpiry"
  | "set"
  | "touch"
  | "destroy"
  | "all"
  | "ids"
  | "length"
  | "clear"
  | "sessionsOf"
  | "destroyOf"
  | "stats"
  | "lock"
  | "pruneBatch";

/** What a store's options change in its statements. */
export interface StatementOptions {
  /** The path of a session's owner (`userKey`): `sessionsOf`, `destroyOf`. */
  userKey?: readonly string[];
  /**
   * Seconds a session lives after its `created` time (`maxLifetime`): every
   * read sees only younger sessions, writes never set `expire` past
   * `created` plus this, and pruning deletes older ones.
   */
  maxLifetime?: number;
}

/**
 * The text of every statement on one table, built once from its quoted name
 * (exported so the benchmark's raw postgres.js floor runs the very same SQL).
 */
export function statements(
  names: TableNames,
  options: StatementOptions = {},
): Record<StatementName, string> {
  const t = names.qualified;
  const at = (n: number) => `to_timestamp($${n}::float8)`;
  const { maxLifetime, userKey } = options;
  const life = maxLifetime === undefined
    ? ""
    : `make_interval(secs => ${maxLifetime}::float8)`;
  // Unexpired at the time in parameter n: by `expire`, and by `created`
  // with a lifetime (rows connect-pg-simple touched may expire later).
  const live = (n: number) =>
    life
      ? `expire >= ${at(n)} AND created >= ${at(n)} - ${life}`
      : `expire >= ${at(n)}`;
  // With a lifetime, the expiry a write sets is capped at created + it.
  const capped = (n: number, created: string) =>
    life ? `LEAST(${at(n)}, ${created} + ${life})` : at(n);
  const owner = userKey === undefined ? "NULL" : ownerExpression(userKey);
  // A data-modifying CTE runs to completion before the outer SELECT reads
  // its count, so the clock is checked after the rows are written (and any
  // row lock waited for); failing there rolls the whole statement back.
  // `returning` adds an aggregate of what the write returned (as `r`).
  const guarded = (
    write: string,
    cutoff: number,
    returning?: { value: string; aggregate: string },
  ) =>
    `WITH w AS (${write} RETURNING ${returning?.value ?? "1"} AS r)
SELECT count(*)::int4, CASE WHEN clock_timestamp() < ${at(cutoff)}
  THEN extract(epoch FROM clock_timestamp())::float8
  ELSE ('${REFUSAL} at ' || clock_timestamp())::float8 END,
  txid_current_if_assigned()::text${
      returning ? `,\n  ${returning.aggregate}` : ""
    } FROM w`;
  const expireSeconds = "extract(epoch FROM expire::timestamptz)::float8";
  // The expiry a write of one session set, for the read cache.
  const writtenExpiry = { value: expireSeconds, aggregate: "max(r)" };
  return {
    // The parameter (always 0) is there for postgres.js: a statement without
    // one, pipelined among the others behind PgBouncer in transaction mode,
    // was sometimes never answered (1 run in 3); with one, none in 40.
    clock: "SELECT extract(epoch FROM clock_timestamp())::float8 + $1::float8",
    notify: "SELECT pg_notify($1::text, $2::text)",
    get: `SELECT sess::text FROM ${t} WHERE sid = $1 AND ${live(2)}`,
    getWithExpiry: `SELECT sess::text, ${expireSeconds}${
      life
        ? `,
  extract(epoch FROM LEAST(expire::timestamptz, created + ${life}))::float8`
        : ""
    } FROM ${t}
WHERE sid = $1 AND ${live(2)}`,
    set: guarded(
      life
        ? `INSERT INTO ${t} AS "row" (sid, sess, expire)
VALUES ($1, $2::text::json, ${capped(3, "now()")})
ON CONFLICT (sid) DO UPDATE SET sess = excluded.sess, expire = ${
          capped(3, `"row".created`)
        }`
        : `INSERT INTO ${t} (sid, sess, expire) VALUES ($1, $2::text::json, ${
          at(3)
        })
ON CONFLICT (sid) DO UPDATE SET sess = excluded.sess, expire = excluded.expire`,
      4,
      writtenExpiry,
    ),
    touch: guarded(
      life
        ? `UPDATE ${t} SET expire = ${capped(2, "created")}
WHERE sid = $1 AND ${live(3)} AND (expire <= ${
          capped(2, "created")
        } - make_interval(secs => $4::float8) OR expire > ${
          capped(2, "created")
        })`
        : `UPDATE ${t} SET expire = ${at(2)} WHERE sid = $1 AND expire >= ${
          at(3)
        }
AND (expire <= to_timestamp($2::float8 - $4::float8) OR expire > ${at(2)})`,
      5,
      writtenExpiry,
    ),
    destroy: guarded(`DELETE FROM ${t} WHERE sid = $1`, 2),
    all: `SELECT sid, sess::text FROM ${t} WHERE ${live(1)}`,
    ids: `SELECT sid FROM ${t} WHERE ${live(1)}`,
    length: `SELECT count(*)::float8 FROM ${t} WHERE ${live(1)}`,
    clear: guarded(`DELETE FROM ${t}`, 1),
    // The owner's expression is the index's, character for character, so
    // the planner can use the index (a parameter there could not).
    sessionsOf:
      `SELECT sid, sess::text FROM ${t} WHERE ${owner} = $1::text AND ${
        live(2)
      }`,
    // The ids deleted, so the read cache drops them at once.
    destroyOf: guarded(
      `DELETE FROM ${t} WHERE ${owner} = $1::text AND sid IS DISTINCT FROM $2::text`,
      3,
      { value: "sid", aggregate: "coalesce(json_agg(r), '[]')::text" },
    ),
    stats: `SELECT count(*)::float8, (count(*) FILTER (WHERE ${
      live(1)
    }))::float8 FROM ${t}`,
    // lock_timeout for this transaction only: a prune never queues for long
    // behind a lock on the table (0 means no limit).
    lock: `SELECT pg_try_advisory_xact_lock(${PRUNE_LOCK}, hashtext($1::text)),
  set_config('lock_timeout', $2::text, true)`,
    // The oldest expired rows through the expire index, deleted by ctid: each
    // batch costs its own size, never a scan of the table (a `sid IN (...)`
    // here was planned as a hash join over every row, once per batch). A row
    // is expired for pruning only if the server's clock agrees: an app whose
    // clock runs fast must not delete what other instances still serve.
    // With a lifetime, also the oldest rows past it, through the created
    // index (ours are capped, so they expire by `expire` too; these are
    // rows written before the migration or by connect-pg-simple).
    pruneBatch: guarded(
      `DELETE FROM ${t} WHERE ctid = ANY(ARRAY(
  SELECT ctid FROM ${t} WHERE expire < LEAST(${at(1)}, now())
  ORDER BY expire LIMIT $2::int4 FOR UPDATE SKIP LOCKED)${
        life
          ? ` || ARRAY(
  SELECT ctid FROM ${t} WHERE created < LEAST(${at(1)}, now()) - ${life}
  ORDER BY created LIMIT $2::int4 FOR UPDATE SKIP LOCKED)`
          : ""
      })`,
      3,
    ),
  };
}

/** Builds the statements of one table once, run on `db.sql`. */
export function createQueries(
  db: Database,
  names: TableNames,
  options: StatementOptions = {},
): Queries {
  const text = statements(names, options);
  const prepared = { prepare: true } as const;
  type Param = string | number | null;
  // Every result passes `ran` before it is believed.
  const run = (query: string, params: Param[]) =>
    db.sql.unsafe(query, params, prepared).values().then(ran);
  const values = async (query: string, params: Param[]) =>
    (await run(query, params)) as unknown[][];

  // The per-request statements chain on the query with `then` rather than
  // `await` it in an async function: a postgres.js query is a Promise
  // subclass, and awaiting one costs an extra promise and two extra turns.
  const firstValue = (rows: unknown[][]) =>
    rows.length ? rows[0][0] as string : null;
  const written = (rows: unknown[][]) => rows[0] as WriteResult;
  const writtenExpiry = (rows: unknown[][]) => rows[0] as ExpiryWriteResult;

  return {
    clock() {
      return run(text.clock, [0]).then((rows) => rows[0][0] as number);
    },
    notify(channel, payload) {
      return run(text.notify, [channel, payload]).then(() => {});
    },
    get(sid, now) {
      return run(text.get, [sid, now]).then(firstValue);
    },
    getWithExpiry(sid, now) {
      return run(text.getWithExpiry, [sid, now]).then((rows) => {
        if (!rows.length) return null;
        const [json, expire, until = expire] = rows[0] as [
          string,
          number,
          number?,
        ];
        return [json, expire, until];
      });
    },
    set(sid, json, expire, cutoff) {
      return run(text.set, [sid, json, expire, cutoff]).then(writtenExpiry);
    },
    touch(sid, expire, now, touchAfter, cutoff) {
      return run(text.touch, [sid, expire, now, touchAfter, cutoff]).then(
        writtenExpiry,
      );
    },
    destroy(sid, cutoff) {
      return run(text.destroy, [sid, cutoff]).then(written);
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
    clear(cutoff) {
      return run(text.clear, [cutoff]).then(written);
    },
    async sessionsOf(owner, now) {
      return (await values(text.sessionsOf, [owner, now])) as [
        string,
        string,
      ][];
    },
    destroyOf(owner, except, cutoff) {
      return run(text.destroyOf, [owner, except, cutoff]).then((rows) => {
        const [count, serverSeconds, transaction, deleted] = rows[0] as [
          number,
          number,
          string | null,
          string,
        ];
        return [count, serverSeconds, transaction, JSON.parse(deleted)];
      });
    },
    async stats(now) {
      const [[total, live]] = await values(text.stats, [now]);
      return { total: Number(total), live: Number(live) };
    },
    pruneBatch(now, limit, cutoff, lockTimeoutMs) {
      const lockTimeout = Number.isFinite(lockTimeoutMs)
        ? String(Math.max(1, Math.ceil(lockTimeoutMs)))
        : "0";
      return db.sql.begin(async (tx) => {
        const [[locked]] = ran(
          await tx.unsafe(text.lock, [names.qualified, lockTimeout], prepared)
            .values(),
        );
        if (!locked) return null;
        const [[count]] = ran(
          await tx.unsafe(text.pruneBatch, [now, limit, cutoff], prepared)
            .values(),
        );
        return count as number;
      }) as Promise<number | null>;
    },
  };
}
