/**
 * What the failover runner (`main.ts`) and its load child (`load.ts`) pass
 * each other. The child gets a {@linkcode LoadConfig} as JSON in the
 * environment variable `FAILOVER_LOAD`, prints {@linkcode LoadEvent}s as JSON
 * lines on stdout, stops when it reads the line `stop` (or stdin closes),
 * and writes a {@linkcode LoadResult} to `resultFile`.
 *
 * @module
 */

/** The load child's settings. */
export interface LoadConfig {
  /** Workers calling the store at once. */
  concurrency: number;
  /** Session ids each worker writes in turn. */
  sidsPerWorker: number;
  /** Every n-th call of a worker is a `get` of one of its ids (the rest are `set`). */
  getEvery: number;
  /** Where the child writes its {@linkcode LoadResult}. */
  resultFile: string;
}

/** A line the load child prints on stdout. */
export type LoadEvent =
  | { event: "ready" }
  | { event: "done" }
  | { event: "error"; message: string };

/** A call's kind, as stored in {@linkcode LoadResult.calls}. */
export const OP_SET = 0;
/** A call's kind, as stored in {@linkcode LoadResult.calls}. */
export const OP_GET = 1;
/** The code index of a call that succeeded. */
export const OK = -1;

/** A `get` that returned an older version than one acknowledged before it. */
export interface OlderRead {
  sid: string;
  /** The last version acknowledged before the `get` started. */
  acked: number;
  /** The version read (`null`: no session). */
  got: number | null;
  /** Epoch ms when the `get` ended. */
  at: number;
  /** True for the reads of every id once the load has stopped. */
  final: boolean;
}

/** What the load child measured. */
export interface LoadResult {
  /** The runtime the store ran on, e.g. `"Deno 2.9.6"`. */
  runtime: string;
  /** Epoch ms that call start times count from. */
  base: number;
  /** Error codes; a call's code index points here. */
  codes: string[];
  /**
   * Every call, four numbers each: start (ms after `base`), duration (ms),
   * kind ({@linkcode OP_SET} or {@linkcode OP_GET}), code index
   * ({@linkcode OK} or an index into `codes`).
   */
  calls: number[];
  /** The first message seen for each code. */
  messages: Record<string, string>;
  /** Per session id, the last version whose `set` was acknowledged. */
  acked: Record<string, number>;
  /** Per session id, the last version a `set` was started with. */
  sent: Record<string, number>;
  older: OlderRead[];
}

/** The epoch time in ms, on the monotonic clock (the same base in every process). */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}
