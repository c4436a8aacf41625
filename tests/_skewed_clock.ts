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

class SkewedDate extends RealDate {
  constructor(...args: ConstructorParameters<DateConstructor> | []) {
    if (args.length === 0) super(RealDate.now() + skewMs);
    else super(...(args as ConstructorParameters<DateConstructor>));
  }

  static override now(): number {
    return RealDate.now() + skewMs;
  }
}

globalThis.Date = SkewedDate as DateConstructor;

/** Sets how far the wall clock is off the real time, in milliseconds. */
export function stepClock(toSkewMs: number): void {
  skewMs = toSkewMs;
}
