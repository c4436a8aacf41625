/**
 * Every DDL statement of a session table: the table and its index, as
 * connect-pg-simple's `table.sql` makes them, with constraint and index
 * names derived from the table so two tables can share a schema; and the
 * notify triggers the read cache needs. `createTableIfMissing` and the
 * command line's `create-table` and `migrate` build from here, so they
 * cannot disagree.
 *
 * @module
 */
import type { PostgresSql } from "./types.ts";
import { quoteIdentifier, type TableNames } from "./names.ts";

/** Advisory lock class id (first key) for table creation: "cpsc". */
const CREATE_LOCK = 0x63707363;

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

/** Whether the table exists. */
export async function tableExists(
  sql: PostgresSql,
  names: TableNames,
): Promise<boolean> {
  const [[exists]] = await sql.unsafe(
    "SELECT to_regclass($1::text) IS NOT NULL",
    [names.qualified],
    { prepare: true },
  ).values();
  return exists as boolean;
}

/**
 * Creates the schema, table and index when missing, serialised across every
 * process by an advisory lock so that concurrent starts cannot race.
 */
export async function createTable(
  sql: PostgresSql,
  names: TableNames,
): Promise<void> {
  await sql.begin(async (tx) => {
    await tx.unsafe(
      `SELECT pg_advisory_xact_lock(${CREATE_LOCK}, hashtext($1::text))`,
      [names.qualified],
    );
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
    for (const statement of tableDefinition(names)) {
      await tx.unsafe(statement);
    }
  });
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

/**
 * Installs the notify triggers on an existing table unless they are there,
 * under the same advisory lock as table creation; resolves to whether it
 * installed them.
 */
export async function createNotifyTrigger(
  sql: PostgresSql,
  names: TableNames,
): Promise<boolean> {
  if ((await notifyStatus(sql, names))?.installed) return false;
  return await sql.begin(async (tx) => {
    await tx.unsafe(
      `SELECT pg_advisory_xact_lock(${CREATE_LOCK}, hashtext($1::text))`,
      [names.qualified],
    );
    await tx.unsafe("SET LOCAL client_min_messages = warning");
    if ((await notifyStatus(tx, names))?.installed) return false;
    for (const statement of notifyDefinition(names)) {
      await tx.unsafe(statement);
    }
    return true;
  }) as boolean;
}
