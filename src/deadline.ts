/**
 * A time limit on every call, so that no store call can wait forever on a
 * connection that will never answer (postgres.js can strand a query on a
 * connection that died mid-flight; see the README's production notes).
 *
 * One timer per store sweeps the calls in flight, rather than a timer per
 * call: arming and clearing a timer costs about 3 µs a call under Deno, a
 * set entry a tenth of a microsecond.
 *
 * @module
 */
import { setTimeout } from "node:timers";

/** The error of a call that ran past the store's `callTimeout`. */
export class CallTimeoutError extends Error {
  /** Always `"CALL_TIMEOUT"`, for `error.code` checks. */
  readonly code = "CALL_TIMEOUT";

  /**
   * @param what The call, e.g. `"get"`.
   * @param ms The limit it ran past, in milliseconds.
   */
  constructor(what: string, ms: number) {
    super(
      `connect-postgres-simple: ${what} got no answer from PostgreSQL within ${
        ms / 1000
      } s (callTimeout); the database may be unreachable`,
    );
    this.name = "CallTimeoutError";
  }
}

/** Limits calls to one duration; see {@linkcode createDeadlines}. */
export interface Deadlines {
  /**
   * Settles like `work`, or rejects with a {@linkcode CallTimeoutError} once
   * the limit has passed without it (the work itself is left to finish or
   * fail unobserved).
   */
  bound<T>(work: Promise<T>, what: string): Promise<T>;
}

interface Pending {
  expiresAt: number;
  fail(): void;
}

/**
 * Makes the deadlines of one store. A call fails between `limitMs` and about
 * a quarter more (the sweep period, at most one second) after it started;
 * `false` means no limit. The sweep timer is unref'd and runs only while
 * calls are in flight.
 */
export function createDeadlines(limitMs: number | false): Deadlines {
  if (limitMs === false) return { bound: (work) => work };
  const period = Math.max(10, Math.min(1000, limitMs / 4));
  // Every call gets the same limit, so insertion order is expiry order.
  const pending = new Set<Pending>();
  let sweeping = false;

  const sweep = () => {
    const now = Date.now();
    for (const call of pending) {
      if (call.expiresAt > now) break;
      pending.delete(call);
      call.fail();
    }
    sweeping = pending.size > 0;
    if (sweeping) setTimeout(sweep, period).unref();
  };

  return {
    bound<T>(work: Promise<T>, what: string): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const call: Pending = {
          expiresAt: Date.now() + limitMs,
          fail: () => reject(new CallTimeoutError(what, limitMs)),
        };
        pending.add(call);
        if (!sweeping) {
          sweeping = true;
          setTimeout(sweep, period).unref();
        }
        work.then((value) => {
          pending.delete(call);
          resolve(value);
        }, (error) => {
          pending.delete(call);
          reject(error);
        });
      });
    },
  };
}
