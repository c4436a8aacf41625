/**
 * Latencies counted in logarithmic buckets (1 % wide, from 1 µs to about an
 * hour): a fixed 8 KB a histogram however many calls it counts, so a
 * half-hour soak measures the store's memory, not its own. Percentiles come
 * back within 1 % of the exact value.
 *
 * @module
 */

const GROWTH = 1.01;
const SMALLEST_MS = 0.001;
const BUCKETS = 2_300; // 1.01 ** 2300 µs ≈ 2.4 hours

/** Counts of latencies in milliseconds; merge several to read one percentile. */
export class LatencyHistogram {
  readonly #counts = new Uint32Array(BUCKETS);
  #total = 0;

  /** How many latencies it holds. */
  get count(): number {
    return this.#total;
  }

  /** Counts one latency, in milliseconds. */
  add(ms: number): void {
    const bucket = ms <= SMALLEST_MS ? 0 : Math.min(
      BUCKETS - 1,
      Math.ceil(Math.log(ms / SMALLEST_MS) / Math.log(GROWTH)),
    );
    this.#counts[bucket]++;
    this.#total++;
  }

  /**
   * The latency at fraction `p` (0.99 for the 99th percentile) of this
   * histogram and `others` together: the upper edge of its bucket, so at
   * most 1 % above the exact value; `NaN` when they hold nothing.
   *
   * @example
   * ```ts
   * import { LatencyHistogram } from "./histogram.ts";
   * const h = new LatencyHistogram();
   * for (let ms = 1; ms <= 100; ms++) h.add(ms);
   * h.percentile(0.5); // ≈ 50
   * ```
   */
  percentile(p: number, others: readonly LatencyHistogram[] = []): number {
    const all = [this, ...others];
    const total = all.reduce((sum, h) => sum + h.#total, 0);
    if (total === 0) return NaN;
    const rank = Math.min(total, Math.floor(total * p) + 1);
    let seen = 0;
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      for (const h of all) seen += h.#counts[bucket];
      if (seen >= rank) return SMALLEST_MS * GROWTH ** bucket;
    }
    return SMALLEST_MS * GROWTH ** (BUCKETS - 1);
  }
}
