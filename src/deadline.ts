/**
 * A time limit on a call, so that no store call can wait forever on a
 * connection that will never answer (postgres.js can strand a query on a
 * connection that died mid-flight; see the README's production notes).
 *
 * @module
 */
import { clearTimeout, setTimeout } from "node:timers";

/** The error of a call that ran past the store's `callTimeout`. */
export class CallTimeoutError extends Error {
  /** Always `"CALL_TIMEOUT"`, for `error.code` checks. */
  readonly code = "CALL_TIMEOUT";

  /** @param what The call, e.g. `"get"`. @param ms The limit it ran past. */
  constructor(what: string, ms: number) {
    super(
      `connect-postgres-simple: ${what} got no answer from PostgreSQL within ${
        ms / 1000
      } s (callTimeout); the database may be unreachable`,
    );
    this.name = "CallTimeoutError";
  }
}

/**
 * Settles like `work`, or rejects with a {@linkcode CallTimeoutError} once
 * `ms` have passed without it (the work itself is left to finish or fail
 * unobserved). `false` means no limit. The timer is unref'd.
 */
export function withDeadline<T>(
  work: Promise<T>,
  ms: number | false,
  what: string,
): Promise<T> {
  if (ms === false) return work;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new CallTimeoutError(what, ms)), ms);
    timer.unref();
    work.then((value) => {
      clearTimeout(timer);
      resolve(value);
    }, (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}
