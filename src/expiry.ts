/**
 * When a session expires: the one rule `set` and `touch` share, in whole
 * seconds as connect-pg-simple counts them, so both stores agree on a table.
 *
 * @module
 */
/** connect-pg-simple's default lifetime of a session without cookie expiry. */
export const DEFAULT_TTL_SECONDS = 86400;

/** The current time in whole seconds, rounded up (connect-pg-simple's clock). */
export function nowSeconds(nowMs: number = Date.now()): number {
  return Math.ceil(nowMs / 1000);
}

/**
 * The expiry of a session, in whole seconds since the epoch: its cookie's
 * `expires` when set, else `ttl` seconds (default one day) from now.
 *
 * @throws {Error} when `cookie.expires` is set but is not a valid date.
 * @example
 * ```ts
 * import { expireSeconds } from "./expiry.ts";
 * const session = { cookie: { expires: "2030-01-01T00:00:00.500Z" } };
 * expireSeconds(session, undefined, Date.now()); // => 1893456001
 * ```
 */
export function expireSeconds(
  session: { cookie?: { expires?: unknown } | null } | null | undefined,
  ttlSeconds: number | undefined,
  nowMs: number,
): number {
  const expires = session?.cookie?.expires;
  if (expires) {
    const ms = new Date(expires as string | number | Date).valueOf();
    if (!Number.isFinite(ms)) {
      throw new Error(
        `connect-postgres-simple: session cookie.expires is not a valid date: ${
          String(expires)
        }`,
      );
    }
    return Math.ceil(ms / 1000);
  }
  return Math.ceil(nowMs / 1000 + (ttlSeconds || DEFAULT_TTL_SECONDS));
}
