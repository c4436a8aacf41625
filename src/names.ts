/**
 * Table and schema names, quoted once so no statement ever has to.
 *
 * @module
 */

/** PostgreSQL's longest identifier, in bytes (NAMEDATALEN - 1). */
export const MAX_IDENTIFIER_BYTES = 63;

/** The names one session table is known by. */
export interface TableNames {
  /** The schema, unquoted, or `undefined` for the `search_path`. */
  schema: string | undefined;
  /** The table, unquoted. */
  table: string;
  /** `"schema"."table"` or `"table"`, ready for SQL. */
  qualified: string;
  /** `"schema"`, ready for SQL, or `undefined`. */
  quotedSchema: string | undefined;
  /** The primary key constraint, quoted: `"<table>_pkey"`. */
  primaryKey: string;
  /** The expiry index, quoted: `"IDX_<table>_expire"`. */
  expireIndex: string;
  /** The index on the session's owner (`userKey`), quoted: `"IDX_<table>_user"`. */
  userIndex: string;
  /** The index on the creation time (`maxLifetime`), quoted: `"IDX_<table>_created"`. */
  createdIndex: string;
  /**
   * The read cache's notify function and row trigger, unquoted:
   * `<table>_notify` (the TRUNCATE trigger adds `_truncate`).
   */
  notify: string;
  /** The TRUNCATE trigger of the read cache, unquoted: `<table>_notify_truncate`. */
  notifyTruncate: string;
}

/**
 * Quotes an identifier for SQL, doubling every `"` inside it.
 *
 * @example
 * ```ts
 * import { quoteIdentifier } from "./names.ts";
 * quoteIdentifier('my "odd" table'); // => '"my ""odd"" table"'
 * ```
 */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Names derived from the table (constraint, index) that fit PostgreSQL's
 * 63-byte limit: a name too long is cut and given a hash suffix, so two long
 * table names never share a derived name after truncation.
 */
function derivedName(name: string): string {
  const bytes = new TextEncoder().encode(name);
  if (bytes.length <= MAX_IDENTIFIER_BYTES) return name;
  const suffix = `_${fnv1a(name).toString(16).padStart(8, "0")}`;
  let cut = MAX_IDENTIFIER_BYTES - suffix.length;
  // Never cut through a UTF-8 sequence: step back to a character boundary.
  while (cut > 0 && (bytes[cut] & 0xc0) === 0x80) cut--;
  return new TextDecoder().decode(bytes.subarray(0, cut)) + suffix;
}

/** 32-bit FNV-1a: a short, stable hash for derived names. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  }
  return hash;
}

/**
 * Resolves the schema and table options into quoted SQL names.
 *
 * A `tableName` holding `"."` with no `schemaName` gets connect-pg-simple's
 * deprecation warning, and if it is exactly `schema"."table` it is split into
 * schema and table as connect-pg-simple does. Any other dot stays part of the
 * one table name.
 */
export function resolveTableNames(
  schemaName: string | undefined,
  tableName: string,
  warn: (message: string) => void,
): TableNames {
  let schema = schemaName;
  let table = tableName;
  if (schema === undefined && tableName.includes('"."')) {
    warn(
      'DEPRECATION WARNING: Schema should be provided through its dedicated "schemaName" option rather than through "tableName"',
    );
    const legacy = /^([^"]+)"\."([^"]+)$/.exec(tableName);
    if (legacy) [, schema, table] = legacy;
  }
  const quotedSchema = schema === undefined
    ? undefined
    : quoteIdentifier(schema);
  const quotedTable = quoteIdentifier(table);
  return {
    schema,
    table,
    quotedSchema,
    qualified: quotedSchema ? `${quotedSchema}.${quotedTable}` : quotedTable,
    primaryKey: quoteIdentifier(derivedName(`${table}_pkey`)),
    expireIndex: quoteIdentifier(derivedName(`IDX_${table}_expire`)),
    userIndex: quoteIdentifier(derivedName(`IDX_${table}_user`)),
    createdIndex: quoteIdentifier(derivedName(`IDX_${table}_created`)),
    notify: derivedName(`${table}_notify`),
    notifyTruncate: derivedName(`${table}_notify_truncate`),
  };
}
