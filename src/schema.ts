/**
 * Every DDL statement of a session table: the table and its index, as
 * connect-pg-simple's `table.sql` makes them, with constraint and index
 * names derived from the table so two tables can share a schema; and the
 * opt-in parts beyond it (the `created` column, the owner index, `expire`
 * as `timestamptz`, the read cache's notify triggers), each a migration
 * step. `createTableIfMissing` and the command line's `create-table` and
 * `migrate` all build from here, so they cannot disagree.
 *
 * @module
 */
import type { PostgresSql } from "./types.ts";
import { quoteIdentifier, type TableNames } from "./names.ts";
import { ownerExpression, quoteLiteral } from "./user_key.ts";

/** Advisory lock class id (first key) for table creation and migration: "cpsc". */
const CREATE_LOCK = 0x63707363;

/**
 * How long one attempt at a step that locks the whole table waits for its
 * lock: while it waits, every query on the table queues behind it, so it
 * gives up soon and tries again (see {@linkcode runStep}).
 */
export const LOCK_ATTEMPT_MS = 1000;

/** What a table may have beyond `table.sql`, each opt-in. */
export interface TableFeatures {
  /** The owner index `IDX_<table>_user` on this `userKey` path. */
  userKey?: readonly string[];
  /** The `created` column that `maxLifetime` needs. */
  created?: boolean;
  /** `expire` as `timestamptz`, which no `TimeZone` setting can misread. */
  timestamptz?: boolean;
  /** The notify triggers the read cache (option `cache`) listens to. */
  notify?: boolean;
}

/** The owner index's DDL; `concurrently` for a table in use. */
function userIndexStatement(
  names: TableNames,
  userKey: readonly string[],
  concurrently: boolean,
): string {
  return `CREATE INDEX ${
    concurrently ? "CONCURRENTLY " : ""
  }IF NOT EXISTS ${names.userIndex} ON ${names.qualified} (${
    ownerExpression(userKey)
  })`;
}

/** The creation time's index, which prunes by lifetime; `concurrently` for a table in use. */
function createdIndexStatement(
  names: TableNames,
  concurrently: boolean,
): string {
  return `CREATE INDEX ${
    concurrently ? "CONCURRENTLY " : ""
  }IF NOT EXISTS ${names.createdIndex} ON ${names.qualified} ("created")`;
}

/**
 * The table's DDL, with constraint and index names derived from the table;
 * with no features, exactly `table.sql`'s table.
 */
export function tableDefinition(
  names: TableNames,
  features: TableFeatures = {},
): string[] {
  const t = names.qualified;
  const expire = features.timestamptz ? "timestamptz(6)" : "timestamp(6)";
  const created = features.created
    ? `\n  "created" timestamptz NOT NULL DEFAULT now(),`
    : "";
  const statements = [
    `CREATE TABLE IF NOT EXISTS ${t} (
  "sid" varchar NOT NULL COLLATE "default",
  "sess" json NOT NULL,
  "expire" ${expire} NOT NULL,${created}
  CONSTRAINT ${names.primaryKey} PRIMARY KEY ("sid") NOT DEFERRABLE INITIALLY IMMEDIATE
)
WITH (OIDS=FALSE)`,
    `CREATE INDEX IF NOT EXISTS ${names.expireIndex} ON ${t} ("expire")`,
  ];
  if (features.created) statements.push(createdIndexStatement(names, false));
  if (features.userKey) {
    statements.push(userIndexStatement(names, features.userKey, false));
  }
  if (features.notify) statements.push(...notifyDefinition(names));
  return statements;
}

/**
 * Takes the creation lock of the table for the transaction `tx` is in;
 * resolves to whether it was taken. With `until` (a `performance.now()`
 * instant) it tries again until then; past it, it fails like a lock wait
 * that timed out (`55P03`).
 *
 * It never waits inside a statement: a statement waiting for the lock holds
 * a snapshot, which a `CREATE INDEX CONCURRENTLY` (on any table of the
 * database) waits for, and the holder of this lock may be waiting for that
 * very build. Between tries the transaction is idle and holds none. For the
 * same reason the table's name is a literal, not a parameter: a transaction
 * left idle after a statement with parameters keeps its snapshot.
 */
async function lockForCreation(
  tx: Pick<PostgresSql, "unsafe">,
  names: TableNames,
  until?: number,
): Promise<boolean> {
  const statement =
    `SELECT pg_try_advisory_xact_lock(${CREATE_LOCK}, hashtext(${
      quoteLiteral(names.qualified)
    }))`;
  for (let tries = 0;; tries++) {
    const [[locked]] = await tx.unsafe(statement).values();
    if (locked || until === undefined) return locked as boolean;
    const pause = Math.min(25 * 2 ** tries, 500);
    if (performance.now() + pause > until) {
      throw Object.assign(
        new Error(
          `another process is changing the table ${names.qualified} (its creation lock is taken)`,
        ),
        { code: "55P03" },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

/**
 * Creates the schema, table and indexes when missing, serialised across
 * every process by an advisory lock so that concurrent starts cannot race.
 * The owner index is built in the same transaction: the table is new.
 */
export async function createTable(
  sql: PostgresSql,
  names: TableNames,
  features: TableFeatures = {},
): Promise<void> {
  await sql.begin(async (tx) => {
    await lockForCreation(tx, names, Infinity);
    await tx.unsafe("SET LOCAL client_min_messages = warning");
    if (names.quotedSchema) {
      const [[missing]] = await tx.unsafe(
        "SELECT to_regnamespace($1::text) IS NULL",
        [names.quotedSchema],
      ).values();
      if (missing) {
        await tx.unsafe(`CREATE SCHEMA IF NOT EXISTS ${names.quotedSchema}`);
      }
    }
    for (const statement of tableDefinition(names, features)) {
      await tx.unsafe(statement);
    }
  });
}

/** The state of an index: none, a failed build's leftover, ready, or (the owner index) on another path. */
export type IndexState = "missing" | "invalid" | "valid" | "other";

/** What a table has today of the opt-in features. */
export interface TableShape {
  exists: boolean;
  /** Whether `expire` is a `timestamptz`. */
  timestamptz: boolean;
  /** Whether the `created` column is there. */
  created: boolean;
  /** The index `IDX_<table>_created`. */
  createdIndex: IndexState;
  /**
   * The owner index `IDX_<table>_user`; `"valid"` until
   * {@linkcode checkUserIndex} has compared it with a `userKey`.
   */
  userIndex: IndexState;
  /** The connection's `TimeZone`, the zone a `timestamp` `expire` was written in. */
  timeZone: string;
  /** Whether both notify triggers of the read cache are there and enabled. */
  notify: boolean;
}

/** `"a""b"` → `a"b`. */
function unquote(quoted: string): string {
  return quoted.slice(1, -1).replaceAll('""', '"');
}

/** Reads what the table has (one catalog query). */
export async function readShape(
  sql: Pick<PostgresSql, "unsafe">,
  names: TableNames,
): Promise<TableShape> {
  const [row] = await sql.unsafe(
    `SELECT c.oid IS NOT NULL AS exists,
  coalesce(e.atttypid = 'timestamptz'::regtype, false) AS timestamptz,
  cr.attname IS NOT NULL AS created,
  (SELECT i.indisvalid FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
    WHERE i.indrelid = c.oid AND ic.relname = $2::text) AS user_index,
  (SELECT i.indisvalid FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
    WHERE i.indrelid = c.oid AND ic.relname = $3::text) AS created_index,
  current_setting('TimeZone') AS time_zone,
  (SELECT count(*) = 2 FROM pg_trigger t WHERE t.tgrelid = c.oid
    AND t.tgname IN ($4::text, $5::text) AND t.tgenabled <> 'D') AS notify
FROM (SELECT to_regclass($1::text) AS oid) c
LEFT JOIN pg_attribute e ON e.attrelid = c.oid AND e.attname = 'expire' AND NOT e.attisdropped
LEFT JOIN pg_attribute cr ON cr.attrelid = c.oid AND cr.attname = 'created' AND NOT cr.attisdropped`,
    [
      names.qualified,
      unquote(names.userIndex),
      unquote(names.createdIndex),
      names.notify,
      names.notifyTruncate,
    ],
  );
  const state = (valid: boolean | null): IndexState =>
    valid === null ? "missing" : valid ? "valid" : "invalid";
  return {
    exists: row.exists,
    timestamptz: row.timestamptz,
    created: row.created,
    createdIndex: state(row.created_index),
    userIndex: state(row.user_index),
    timeZone: row.time_zone,
    notify: row.notify,
  };
}

/**
 * The shape with a valid owner index checked against `userKey`: it stays
 * `"valid"` only if the planner can use it for that path's expression, and
 * becomes `"other"` when it indexes something else.
 */
export async function checkUserIndex(
  sql: PostgresSql,
  names: TableNames,
  userKey: readonly string[],
  shape: TableShape,
): Promise<TableShape> {
  if (shape.userIndex !== "valid") return shape;
  const plan = await sql.begin(async (tx) => {
    await tx.unsafe("SET LOCAL enable_seqscan = off");
    const rows = await tx.unsafe(
      `EXPLAIN (FORMAT JSON) SELECT 1 FROM ${names.qualified} WHERE ${
        ownerExpression(userKey)
      } = ''`,
    ).values();
    return JSON.stringify(rows[0][0]);
  });
  const serves = plan.includes(JSON.stringify(unquote(names.userIndex)));
  return serves ? shape : { ...shape, userIndex: "other" };
}

/** One change `migrate` makes to a table. */
export interface MigrationStep {
  /** The option it serves: `--timestamptz`, `--created`, `--user-key`, `--notify`. */
  flag: string;
  /** What it does, in words. */
  what: string;
  /** The lock it takes on the table, and what that lock blocks. */
  lock: string;
  /**
   * Whether its statements run in one transaction, each attempt waiting at
   * most {@linkcode LOCK_ATTEMPT_MS} for its locks; otherwise one by one,
   * outside any transaction (`CREATE INDEX CONCURRENTLY`).
   */
  transaction: boolean;
  statements: string[];
}

/**
 * The steps that bring a table that exists to what `features` need, in the
 * order they run (`expire` is rewritten before the index is built, so the
 * index is not built twice); none when it has everything. The shape's
 * owner index must have been checked ({@linkcode checkUserIndex}).
 *
 * @throws {Error} when an index of the owner index's name indexes another path.
 */
export function migrationSteps(
  names: TableNames,
  features: TableFeatures,
  shape: TableShape,
): MigrationStep[] {
  const t = names.qualified;
  const steps: MigrationStep[] = [];
  if (features.timestamptz && !shape.timestamptz) {
    steps.push({
      flag: "--timestamptz",
      what:
        `convert "expire" to timestamptz, reading its values in the time zone ${shape.timeZone}`,
      lock:
        "ACCESS EXCLUSIVE: reads and writes wait while the table is rewritten and its indexes rebuilt",
      transaction: true,
      statements: [
        `SET LOCAL TimeZone TO ${quoteLiteral(shape.timeZone)}`,
        `ALTER TABLE ${t} ALTER COLUMN "expire" TYPE timestamptz(6)`,
      ],
    });
  }
  if (features.created && !shape.created) {
    steps.push({
      flag: "--created",
      what:
        'add the column "created" (existing sessions get the time of the migration)',
      lock:
        "ACCESS EXCLUSIVE, for an instant from PostgreSQL 11 (PostgreSQL 10 rewrites the table)",
      transaction: true,
      statements: [
        `ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS "created" timestamptz NOT NULL DEFAULT now()`,
      ],
    });
  }
  if (features.notify && !shape.notify) {
    steps.push({
      flag: "--notify",
      what:
        `install the notify triggers ${names.notify} and ${names.notifyTruncate} of the read cache`,
      lock:
        "SHARE ROW EXCLUSIVE, for an instant: writes wait, reads go on (ACCESS EXCLUSIVE to replace a trigger already there, e.g. disabled)",
      transaction: true,
      statements: notifyDefinition(names),
    });
  }
  if (features.created && shape.createdIndex !== "valid") {
    steps.push(indexStep(
      names,
      "--created",
      names.createdIndex,
      shape.createdIndex,
      createdIndexStatement(names, true),
      'on "created", which prunes sessions past their lifetime',
    ));
  }
  if (features.userKey && shape.userIndex !== "valid") {
    if (shape.userIndex === "other") {
      throw new Error(
        `index ${names.userIndex} exists on ${t} but not on the path ${
          features.userKey.join(".")
        }: drop it first (DROP INDEX CONCURRENTLY ${
          qualifiedIndex(names, names.userIndex)
        })`,
      );
    }
    steps.push(indexStep(
      names,
      "--user-key",
      names.userIndex,
      shape.userIndex,
      userIndexStatement(names, features.userKey, true),
      `on the path ${features.userKey.join(".")}`,
    ));
  }
  return steps;
}

/** Builds an index concurrently; first drops what a failed build left. */
function indexStep(
  names: TableNames,
  flag: string,
  index: string,
  state: IndexState,
  create: string,
  on: string,
): MigrationStep {
  const invalid = state === "invalid";
  return {
    flag,
    what: invalid
      ? `rebuild the index ${index}, left invalid by a build that failed`
      : `build the index ${index} ${on}`,
    lock:
      "SHARE UPDATE EXCLUSIVE: reads and writes go on; it waits for transactions already running",
    transaction: false,
    statements: invalid
      ? [
        `DROP INDEX CONCURRENTLY IF EXISTS ${qualifiedIndex(names, index)}`,
        create,
      ]
      : [create],
  };
}

function qualifiedIndex(names: TableNames, index: string): string {
  return names.quotedSchema ? `${names.quotedSchema}.${index}` : index;
}

/** Whether an error is a lock wait given up by `lock_timeout`. */
function isLockTimeout(error: unknown): boolean {
  return (error as { code?: unknown })?.code === "55P03";
}

/**
 * Brings an existing table to what `features` need, one step at a time:
 * {@linkcode alterTable}, then {@linkcode buildIndexes}.
 *
 * @param started Told of each step as it starts.
 * @returns The steps run, each with the seconds from its first statement
 * to its commit.
 */
export async function migrateTable(
  sql: PostgresSql,
  names: TableNames,
  features: TableFeatures,
  deadline: number,
  started: (step: MigrationStep) => void = () => {},
): Promise<DoneStep[]> {
  const done = await alterTable(sql, names, features, deadline, started);
  const { userKey, created } = features;
  if (userKey || created) {
    let began = 0;
    let running: MigrationStep | undefined;
    const finish = () => {
      if (running) done.push({ ...running, seconds: since(began) });
    };
    await buildIndexes(sql, names, { userKey, created }, {
      waitMs: Math.max(1, deadline - performance.now()),
      started(step) {
        finish();
        started(step);
        running = step;
        began = performance.now();
      },
    });
    finish();
  }
  return done;
}

/**
 * The steps that change the table itself (`expire`'s type, the `created`
 * column, the notify triggers), each in a transaction that takes the table's creation lock (so
 * no two processes change one table at once) and looks at the table again
 * under it, so a step another process has just done is skipped. Each
 * attempt waits at most {@linkcode LOCK_ATTEMPT_MS} for its lock on the
 * table, then tries again until `deadline` (a `performance.now()`
 * instant): while it waits, every query on the table queues behind it.
 *
 * @returns The steps run, with their seconds.
 */
export async function alterTable(
  sql: PostgresSql,
  names: TableNames,
  features: TableFeatures,
  deadline: number,
  started: (step: MigrationStep) => void = () => {},
): Promise<DoneStep[]> {
  const done: DoneStep[] = [];
  const { timestamptz, created, notify } = features;
  for (const part of [{ timestamptz }, { created }, { notify }]) {
    if (!part.timestamptz && !part.created && !part.notify) continue;
    let began = 0;
    const step = await retryLocked(deadline, () =>
      sql.begin(async (tx) => {
        await tx.unsafe(`SET LOCAL lock_timeout = '${LOCK_ATTEMPT_MS}ms'`);
        // No NOTICE from --notify's DROP TRIGGER IF EXISTS on the app's console.
        await tx.unsafe("SET LOCAL client_min_messages = warning");
        await lockForCreation(tx, names, deadline);
        // The steps that change the table itself; its indexes are not theirs.
        const [next] = migrationSteps(names, part, await readShape(tx, names))
          .filter((step) => step.transaction);
        if (next === undefined) return undefined;
        started(next);
        began = performance.now();
        for (const statement of next.statements) await tx.unsafe(statement);
        return next;
      }));
    if (step) done.push({ ...step, seconds: since(began) });
  }
  return done;
}

/** A step `migrateTable` ran. */
export interface DoneStep extends MigrationStep {
  /** Seconds from its first statement to its commit. */
  seconds: number;
}

function since(began: number): number {
  return Math.round(performance.now() - began) / 1000;
}

async function retryLocked<T>(
  deadline: number,
  attempt: () => Promise<T>,
): Promise<T> {
  for (let n = 0;; n++) {
    try {
      return await attempt();
    } catch (error) {
      const pause = Math.min(100 * 2 ** n, 2000) * Math.random();
      if (!isLockTimeout(error) || performance.now() + pause >= deadline) {
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

/**
 * Builds (or rebuilds, when a failed build left them invalid) the indexes
 * `features` need, with `CREATE INDEX CONCURRENTLY`: reads and writes go on
 * meanwhile.
 *
 * It holds the table's creation lock throughout, in a transaction on a
 * connection of its own: two concurrent builds of one index can deadlock
 * and leave it invalid. That transaction takes no snapshot and no lock on
 * the table, so the builds on other connections do not wait for it, and it
 * works through PgBouncer in transaction mode. With `waitMs` 0 it gives up
 * at once when another process holds the lock.
 *
 * @returns The steps run: none when the indexes were there already or
 * another process held the lock.
 * @throws {Error} when an index of the owner index's name indexes another path.
 */
export async function buildIndexes(
  sql: PostgresSql,
  names: TableNames,
  features: Pick<TableFeatures, "userKey" | "created">,
  { waitMs, started = () => {} }: {
    waitMs: number;
    started?: (step: MigrationStep) => void;
  },
): Promise<MigrationStep[]> {
  const build = async () => {
    let shape = await readShape(sql, names);
    if (features.userKey) {
      shape = await checkUserIndex(sql, names, features.userKey, shape);
    }
    // The column is another step's; here, only its index.
    const steps = migrationSteps(names, features, { ...shape, created: true });
    for (const step of steps) {
      started(step);
      for (const statement of step.statements) await sql.unsafe(statement);
    }
    return steps;
  };
  // A pool of one connection cannot hold the lock on a connection of its
  // own while it builds: it builds unguarded.
  if (sql.options.max < 2) return build();
  let steps: MigrationStep[] = [];
  await sql.begin(async (tx) => {
    const until = waitMs > 0 ? performance.now() + waitMs : undefined;
    if (await lockForCreation(tx, names, until)) steps = await build();
  });
  return steps;
}

/**
 * The channel a table's notify triggers send on: this prefix and the
 * table's oid (`TG_RELID`), so it fits PostgreSQL's 63-byte limit for any
 * table name and two tables never share one.
 */
export const NOTIFY_CHANNEL_PREFIX = "connect_postgres_simple_";

/**
 * The read cache's triggers, as a script that can run again (it replaces
 * them): a function `<table>_notify()` that sends `pg_notify` on the
 * table's channel, a row trigger `<table>_notify` after every UPDATE and
 * DELETE (payload `<transaction id>:<sid>` of the old row), and a statement
 * trigger `<table>_notify_truncate` after TRUNCATE (an empty payload:
 * every session). `EXECUTE PROCEDURE`, not `FUNCTION`: PostgreSQL 10 knows
 * only the former.
 */
export function notifyDefinition(names: TableNames): string[] {
  const t = names.qualified;
  const fn = `${names.quotedSchema ? `${names.quotedSchema}.` : ""}${
    quoteIdentifier(names.notify)
  }()`;
  const row = quoteIdentifier(names.notify);
  const truncate = quoteIdentifier(names.notifyTruncate);
  const channel = `'${NOTIFY_CHANNEL_PREFIX}' || TG_RELID`;
  return [
    `CREATE OR REPLACE FUNCTION ${fn} RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_LEVEL = 'ROW' THEN
    PERFORM pg_notify(${channel}, txid_current() || ':' || OLD.sid);
  ELSE
    PERFORM pg_notify(${channel}, '');
  END IF;
  RETURN NULL;
END
$$`,
    `DROP TRIGGER IF EXISTS ${row} ON ${t}`,
    `CREATE TRIGGER ${row} AFTER UPDATE OR DELETE ON ${t}
  FOR EACH ROW EXECUTE PROCEDURE ${fn}`,
    `DROP TRIGGER IF EXISTS ${truncate} ON ${t}`,
    `CREATE TRIGGER ${truncate} AFTER TRUNCATE ON ${t}
  FOR EACH STATEMENT EXECUTE PROCEDURE ${fn}`,
  ];
}

/** Where a table's notifications go, and whether its triggers are there. */
export interface NotifyStatus {
  /** The channel its triggers send on. */
  channel: string;
  /** Whether both notify triggers exist and are enabled. */
  installed: boolean;
}

/** The table's notify channel and triggers, or `null` when there is no such table. */
export async function notifyStatus(
  sql: Pick<PostgresSql, "unsafe">,
  names: TableNames,
): Promise<NotifyStatus | null> {
  const [[oid, triggers]] = await sql.unsafe(
    `SELECT c.oid::int8::text, (SELECT count(*)::int4 FROM pg_trigger t
  WHERE t.tgrelid = c.oid AND t.tgname IN ($2::text, $3::text) AND t.tgenabled <> 'D')
FROM (SELECT to_regclass($1::text)::oid AS oid) c`,
    [names.qualified, names.notify, names.notifyTruncate],
    { prepare: true },
  ).values();
  if (oid === null) return null;
  return { channel: NOTIFY_CHANNEL_PREFIX + oid, installed: triggers === 2 };
}
