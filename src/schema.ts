/**
 * Every DDL statement of a session table: the table and its index, as
 * connect-pg-simple's `table.sql` makes them, with constraint and index
 * names derived from the table so two tables can share a schema.
 * `createTableIfMissing` and the command line's `create-table` both build
 * from here, so they cannot disagree.
 *
 * @module
 */
import type { PostgresSql } from "./types.ts";
import type { TableNames } from "./names.ts";

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
