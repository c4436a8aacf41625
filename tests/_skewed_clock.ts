/**
 * A wall clock that is wrong, for a child process to import first: `Date`
 * (and so `Date.now()` and `new Date()`) runs `skew` milliseconds off the
 * real time, and {@linkcode stepClock} moves it while the process runs, as
 * an NTP step or a hand-set clock would. The monotonic clock
 * (`performance.now()`) is left alone, as the operating system leaves it.
 *
 * @module
 */

const RealDate = Date;
let skewMs = 0;

globalThis.Date = new Proxy(RealDate, {
  construct(target, args) {
    return args.length === 0
      ? new target(RealDate.now() + skewMs)
      : Reflect.construct(target, args);
  },
  get(target, key, receiver) {
    return key === "now"
      ? () => RealDate.now() + skewMs
      : Reflect.get(target, key, receiver);
  },
});

/** Sets how far the wall clock is off the real time, in milliseconds. */
export function stepClock(toSkewMs: number): void {
  skewMs = toSkewMs;
}
