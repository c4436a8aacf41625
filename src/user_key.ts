/**
 * The owner of a session: the `userKey` option, a dotted path into the
 * session (`"passport.user"`), and the SQL expression PostgreSQL reads the
 * owner with, `(sess #>> '{"passport","user"}'::text[])`.
 *
 * The path goes into the SQL as a literal, not a bound parameter: the
 * expression index `IDX_<table>_user` serves a query only when the query
 * holds the same constant as the index, and a parameter is not one once a
 * prepared statement switches to its generic plan. The literal is built
 * here, once per store, with every character of the path quoted.
 *
 * @module
 */

/** A lone UTF-16 surrogate: not valid Unicode, PostgreSQL would store U+FFFD. */
const LONE_SURROGATE =
  /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The segments of a `userKey`, or a reason it is unusable: each segment must
 * be non-empty and hold nothing PostgreSQL text cannot (NUL, a lone
 * surrogate). Anything else goes, quotes and braces included.
 *
 * @example
 * ```ts
 * import { userKeySegments } from "./user_key.ts";
 * userKeySegments("passport.user"); // => ["passport", "user"]
 * userKeySegments("a..b"); // => "a string of non-empty segments separated by dots"
 * ```
 */
export function userKeySegments(key: unknown): string[] | string {
  const words = "a string of non-empty segments separated by dots";
  if (typeof key !== "string") return words;
  const segments = key.split(".");
  if (segments.some((segment) => segment === "")) return words;
  if (key.includes("\0")) return `${words}, without NUL characters`;
  if (LONE_SURROGATE.test(key)) return `${words}, valid Unicode`;
  return segments;
}

/**
 * A string as a SQL literal: `'` doubled; with a backslash, the `E''` form
 * with backslashes doubled too, which reads the same whatever the server's
 * `standard_conforming_strings`.
 */
export function quoteLiteral(text: string): string {
  const quoted = text.replaceAll("'", "''");
  return text.includes("\\")
    ? `E'${quoted.replaceAll("\\", "\\\\")}'`
    : `'${quoted}'`;
}

/**
 * The path as a PostgreSQL array literal, every element double-quoted with
 * `"` and `\` escaped, so braces, commas, spaces and quotes stay inside
 * their element.
 */
export function arrayLiteral(segments: readonly string[]): string {
  const elements = segments.map((segment) =>
    `"${segment.replace(/["\\]/g, "\\$&")}"`
  );
  return `{${elements.join(",")}}`;
}

/**
 * The SQL expression of a session's owner: the text at `segments` in the
 * stored JSON (`json` or `jsonb`), `NULL` when the path is absent.
 *
 * @example
 * ```ts
 * import { ownerExpression } from "./user_key.ts";
 * ownerExpression(["passport", "user"]);
 * // => `(sess #>> '{"passport","user"}'::text[])`
 * ```
 */
export function ownerExpression(segments: readonly string[]): string {
  return `(sess #>> ${quoteLiteral(arrayLiteral(segments))}::text[])`;
}

/**
 * The owner a caller asked for, as the text it is compared with: a
 * non-empty string, a finite number or a bigint, as `String(user)`.
 *
 * @throws {TypeError} when the store has no `userKey`, or for any other
 * value (`undefined`, `null`, `""`, an object...): nothing is read or
 * deleted then.
 */
export function ownerText(
  user: unknown,
  userKey: readonly string[] | undefined,
  method: string,
): string {
  if (userKey === undefined) {
    throw new TypeError(
      `connect-postgres-simple: ${method} needs the \`userKey\` option, the path of the owner in a session (e.g. userKey: "passport.user")`,
    );
  }
  const ok = (typeof user === "string" && user !== "") ||
    (typeof user === "number" && Number.isFinite(user)) ||
    typeof user === "bigint";
  if (!ok) {
    throw new TypeError(
      `connect-postgres-simple: ${method} needs a user: a non-empty string, a finite number or a bigint, got ${
        describe(user)
      }`,
    );
  }
  const text = String(user);
  if (text.includes("\0") || LONE_SURROGATE.test(text)) {
    throw new TypeError(
      `connect-postgres-simple: ${method} needs a user PostgreSQL can store as text (no NUL, valid Unicode)`,
    );
  }
  return text;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (value === "") return 'an empty string ""';
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number") return String(value);
  return typeof value === "object" ? "an object" : typeof value;
}
