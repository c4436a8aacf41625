/**
 * The database server's clock, as seen from the app's monotonic clock.
 *
 * A write carries a cutoff in the server's clock, past which the statement
 * refuses to apply (see `queries.ts`). To state "the call's deadline" in the
 * server's clock without trusting the app's wall clock, every answer that
 * carries the server's `clock_timestamp()` bounds the offset between the two
 * clocks from below: the server read its clock before the answer arrived, so
 * `server - monotonic(arrival)` can only underestimate the true offset. The
 * best (largest) such bound seen recently is used, so a cutoff stated with it
 * falls at or before the deadline on the server's clock too.
 *
 * The assumption: the server's clock does not step backwards between a
 * sample and its use (samples older than {@linkcode SAMPLE_MAX_AGE_MS} are
 * not used), and it runs at the rate of the app's monotonic clock (NTP slews
 * by at most 500 ppm: 30 ms a minute at worst, within the cutoff margin).
 *
 * @module
 */

/** A sample is replaced by a fresher, possibly weaker, one after this long. */
export const SAMPLE_REFRESH_MS = 30_000;
/** No sample older than this is used: the next write asks the server first. */
export const SAMPLE_MAX_AGE_MS = 60_000;

/** The server's clock, bounded from the app's side; see {@linkcode createServerClock}. */
export interface ServerClock {
  /**
   * The server-clock time, in seconds since the epoch, at or before the
   * monotonic instant `monotonicMs` (from `performance.now()`). Synchronous
   * when a recent answer bounds it; otherwise it asks the server first.
   */
  toServerSeconds(monotonicMs: number): number | Promise<number>;
  /**
   * Records an answer: the server's clock read while handling it (seconds
   * since the epoch) and `performance.now()` when it arrived.
   */
  observe(serverSeconds: number, arrivedAt: number): void;
}

/**
 * Makes the view of one server's clock.
 *
 * @param readServerClock Asks the server for its clock, in seconds since
 * the epoch; used when no recent answer has told it.
 */
export function createServerClock(
  readServerClock: () => Promise<number>,
): ServerClock {
  let offsetMs = 0;
  let sampledAt = -Infinity;
  let asking: Promise<void> | undefined;

  const observe = (serverSeconds: number, arrivedAt: number) => {
    const offset = serverSeconds * 1000 - arrivedAt;
    if (offset >= offsetMs || arrivedAt - sampledAt > SAMPLE_REFRESH_MS) {
      offsetMs = offset;
      sampledAt = arrivedAt;
    }
  };
  const ask = () =>
    asking ??= readServerClock().then(
      (seconds) => observe(seconds, performance.now()),
    ).finally(() => asking = undefined);

  return {
    toServerSeconds(monotonicMs) {
      if (monotonicMs === Infinity) return Infinity;
      if (performance.now() - sampledAt <= SAMPLE_MAX_AGE_MS) {
        return (monotonicMs + offsetMs) / 1000;
      }
      // Just observed: the sample is fresh now.
      return ask().then(() => (monotonicMs + offsetMs) / 1000);
    },
    observe,
  };
}
