/**
 * userKey paths whose segments hold what a quoting bug would trip on:
 * quotes of both kinds, braces, commas, backslashes, spaces, unicode, an
 * injection attempt. `users_test.ts` checks each matches exactly its own
 * path; `user_index.deno_test.ts` that the index serves each.
 *
 * @module
 */

/** The hostile userKeys, each a dotted path. */
export const HOSTILE_KEYS: readonly string[] = [
  'say "hi".name',
  "it's.o'clock",
  "}.{",
  "a,b.c",
  "back\\slash.x\\",
  "ключ.🔑",
  " spaced . out ",
  "NULL.null",
  "'); DROP TABLE victim; --.x",
  '\\"}\'.{"\\,',
  "$1.$$",
];

/** A session holding `value` at the path `segments`. */
export function nested(
  segments: readonly string[],
  value: unknown,
): Record<string, unknown> {
  return segments.reduceRight<unknown>(
    (inner, name) => ({ [name]: inner }),
    value,
  ) as Record<string, unknown>;
}
