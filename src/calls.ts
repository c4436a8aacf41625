/**
 * The life of one store call: a time limit on the monotonic clock, and
 * retries of transient failures while the call is open.
 *
 * A call ends at the latest when its limit (`callTimeout`) has passed,
 * whatever its connection does: it then fails with a
 * {@linkcode CallTimeoutError}. Its writes must apply before an earlier
 * instant, `writeBy` (the limit less a margin, {@linkcode cutoffMargin}):
 * each write statement carries that instant in the server's clock and
 * refuses to apply after it, so a call reported failed never changes the
 * table afterwards, even if its statement was queued or delayed.
 *
 * The clock is `performance.now()`, so a step of the wall clock neither
 * stretches nor cuts a call's time. One timer per store serves every call:
 * calls share one limit and a monotonic clock, so the order they start in
 * is the order they expire in, and the timer waits for the oldest.
 *
 * @module
 */
import { clearTimeout, setTimeout } from "node:timers";
import { isTransient, retryDelay } from "./retry.ts";

/** The error of a call that could not complete within the store's `callTimeout`. */
export class CallTimeoutError extends Error {
  /** Always `"CALL_TIMEOUT"`, for `error.code` checks. */
  readonly code = "CALL_TIMEOUT";

  /**
   * Describes the call that ran out of time.
   *
   * @param what The call, e.g. `"get"`.
   * @param limitMs Its limit, in milliseconds.
   * @param cause The last error a retried attempt met, if any.
   */
  constructor(what: string, limitMs: number, cause?: unknown) {
    const last = cause === undefined ? "" : `; last error: ${describe(cause)}`;
    super(
      `connect-postgres-simple: ${what} got no answer from PostgreSQL within ${
        limitMs / 1000
      } s (callTimeout); the database may be unreachable${last}`,
      cause === undefined ? undefined : { cause },
    );
    this.name = "CallTimeoutError";
  }
}

function describe(error: unknown): string {
  const { code, message } = error as { code?: unknown; message?: unknown };
  const text = typeof message === "string" ? message : String(error);
  return typeof code === "string" && !text.includes(code)
    ? `${text} (${code})`
    : text;
}

/** One call in flight, as its attempts see it. */
export interface Call {
  /**
   * The `performance.now()` instant by which the call's writes must have
   * applied; `Infinity` when calls have no limit.
   */
  readonly writeBy: number;
}

/** Runs calls; see {@linkcode createCalls}. */
export interface Calls {
  /**
   * Runs `attempt`, again after a transient failure while time is left, and
   * settles with its outcome, or with a {@linkcode CallTimeoutError} once the
   * limit has passed or a write was refused at its cutoff.
   */
  run<T>(what: string, attempt: (call: Call) => Promise<T>): Promise<T>;
}

/** How a call tells that the server refused a write at its cutoff. */
export type RefusalTest = (error: unknown) => boolean;

/**
 * Retries go on this long when calls have no limit (`callTimeout: false`):
 * no limit on an answer does not mean trying forever.
 */
export const UNLIMITED_RETRY_MS = 10_000;

/**
 * How much earlier than its limit a call's writes stop applying: a fifth of
 * the limit, at most a second. It covers what follows the server's check:
 * the commit itself, and a reply on its way.
 */
export function cutoffMargin(limitMs: number): number {
  return Math.min(1000, limitMs / 5);
}

interface Pending {
  readonly expiresAt: number;
  /** When its latest attempt started. */
  attemptAt: number;
  expire(): void;
  /** Starts one more attempt beside a stalled one. */
  hedge(): void;
}

/**
 * How long an attempt may wait, while calls made after it are answered,
 * before the call tries again beside it: a fifth of the limit, from 50 ms to
 * 1 s. postgres.js 3.4.9 can strand a query on a connection that died as it
 * was handed over, and never answer it; the second attempt takes another
 * connection. Statements are idempotent and writes fenced by their cutoff,
 * so two attempts of one call are safe; the first answer settles the call.
 */
export function stallAfter(limitMs: number): number {
  return Math.max(50, Math.min(1000, limitMs / 5));
}

/** How many oldest calls a successful attempt looks at for stalls. */
const STALL_SCAN = 8;

/**
 * Makes the calls of one store.
 *
 * @param limitMs Each call's limit in milliseconds, or `false` for none.
 * @param refused Tells a write refused at its cutoff from other errors.
 */
export function createCalls(
  limitMs: number | false,
  refused: RefusalTest,
): Calls {
  const limit = limitMs === false ? Infinity : limitMs;
  const margin = limitMs === false ? 0 : cutoffMargin(limitMs);
  const retryFor = limitMs === false ? UNLIMITED_RETRY_MS : limitMs - margin;
  const stallMs = stallAfter(limitMs === false ? UNLIMITED_RETRY_MS : limitMs);
  // In start order, which is expiry order: one limit, a monotonic clock.
  const pending = new Set<Pending>();
  let timer: ReturnType<typeof setTimeout> | undefined;

  const sweep = () => {
    timer = undefined;
    const now = performance.now();
    for (const call of pending) {
      if (call.expiresAt > now) break;
      pending.delete(call);
      call.expire();
    }
    arm();
  };

  const arm = () => {
    if (timer !== undefined) return;
    for (const oldest of pending) {
      if (oldest.expiresAt === Infinity) return;
      const wait = Math.max(0, oldest.expiresAt - performance.now());
      timer = setTimeout(sweep, wait);
      timer.unref();
      return;
    }
  };

  /**
   * An attempt started at `answeredStart` was just answered: any older
   * attempt still unanswered after `stallMs` is likely stranded.
   */
  const hedgeStalled = (answeredStart: number) => {
    const now = performance.now();
    let looked = 0;
    for (const call of pending) {
      if (++looked > STALL_SCAN) break;
      if (call.attemptAt < answeredStart && now - call.attemptAt > stallMs) {
        call.hedge();
      }
    }
  };

  return {
    run<T>(what: string, attempt: (call: Call) => Promise<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const started = performance.now();
        const call: Call = { writeBy: started + limit - margin };
        const retryUntil = started + retryFor;
        let retries = 0;
        let hedged = false;
        let over = false;
        let lastError: unknown;
        let retryTimer: ReturnType<typeof setTimeout> | undefined;

        const entry: Pending = {
          expiresAt: started + limit,
          attemptAt: started,
          expire() {
            over = true;
            if (retryTimer !== undefined) clearTimeout(retryTimer);
            reject(new CallTimeoutError(what, limitMs as number, lastError));
          },
          hedge() {
            if (over || hedged) return;
            hedged = true;
            attemptNow();
          },
        };
        pending.add(entry);
        arm();
        const finish = () => {
          over = true;
          pending.delete(entry);
        };
        const succeeded = (attemptAt: number) => (value: T) => {
          if (over) return;
          finish();
          resolve(value);
          hedgeStalled(attemptAt);
        };
        const failed = (error: unknown) => {
          if (over) return;
          if (limitMs !== false && refused(error)) {
            finish();
            reject(new CallTimeoutError(what, limitMs as number, error));
            return;
          }
          if (isTransient(error)) {
            const delay = retryDelay(retries++);
            if (performance.now() + delay < retryUntil) {
              lastError = error;
              retryTimer = setTimeout(once, delay);
              return;
            }
            if (limitMs !== false) {
              finish();
              reject(new CallTimeoutError(what, limitMs, error));
              return;
            }
          }
          finish();
          reject(error);
        };
        const attemptNow = () => {
          const attemptAt = entry.attemptAt = performance.now();
          let work: Promise<T>;
          try {
            work = attempt(call);
          } catch (error) {
            failed(error);
            return;
          }
          work.then(succeeded(attemptAt), failed);
        };
        const once = () => {
          retryTimer = undefined;
          if (!over) attemptNow();
        };
        once();
      });
    },
  };
}
