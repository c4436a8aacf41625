/**
 * Session ids and session data on their way in and out of the table: what
 * is accepted, how it becomes JSON, how stored JSON becomes a session again,
 * and errors that name the input at fault.
 *
 * @module
 */

/** Throws a `TypeError` unless `sid` is a string PostgreSQL can store. */
export function checkSid(sid: unknown): asserts sid is string {
  if (typeof sid !== "string") {
    throw new TypeError(
      `connect-postgres-simple: session id must be a string, got ${
        sid === null ? "null" : typeof sid
      }`,
    );
  }
  if (sid.includes("\0")) {
    throw new TypeError(
      "connect-postgres-simple: session id must not contain a NUL character",
    );
  }
  // PostgreSQL stores text as UTF-8, where a lone surrogate becomes U+FFFD:
  // "a\uD800", "a\uDC00" and "a\uFFFD" would all name one row.
  if (LONE_SURROGATE.test(sid)) {
    throw new TypeError(
      "connect-postgres-simple: session id must not contain a lone surrogate (it is not valid Unicode)",
    );
  }
}

/** A high surrogate not followed by a low one, or a low one not after a high one. */
const LONE_SURROGATE =
  /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The session as JSON text; a `TypeError` when it is not a plain object or
 * cannot be turned into JSON (circular, `BigInt`, a throwing `toJSON`).
 */
export function serialize(session: unknown): string {
  if (
    typeof session !== "object" || session === null || Array.isArray(session)
  ) {
    throw new TypeError(
      `connect-postgres-simple: session must be an object, got ${
        session === null
          ? "null"
          : Array.isArray(session)
          ? "an array"
          : typeof session
      }`,
    );
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(session);
  } catch (error) {
    throw new TypeError(
      `connect-postgres-simple: session cannot be stored as JSON: ${
        (error as Error).message
      }`,
      { cause: error },
    );
  }
  // A toJSON of its own may turn the session into a number, a string, null...
  if (json?.[0] !== "{") {
    throw new TypeError(
      `connect-postgres-simple: session must be stored as a JSON object, but its toJSON() gave ${
        json === undefined ? "undefined" : json.slice(0, 40)
      }`,
    );
  }
  return json;
}

/**
 * PostgreSQL's btree takes index entries of at most about 2700 bytes (after
 * compression), so a long, incompressible id cannot be stored; its error
 * ("index row size ... exceeds ...") does not say it is about the id.
 */
export function sidTooLong(sid: string, error: unknown): Error | undefined {
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (code !== "54000" || !/index row/.test(String(message))) return undefined;
  return new Error(
    `connect-postgres-simple: session id too long to store: ${
      new TextEncoder().encode(sid).length
    } bytes, PostgreSQL indexes at most about 2700 (${message})`,
    { cause: error },
  );
}

/**
 * Reads a stored session, typed as the caller's session type `S`. A session
 * stored as a JSON string (double-encoded) is decoded once more, as
 * connect-pg-simple does; `undefined` when that fails, meaning the row is
 * unreadable.
 */
export function parseSession<S>(json: string): S | undefined {
  const value = JSON.parse(json);
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}
