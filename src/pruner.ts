/**
 * All of pruning: the batch loop that deletes expired sessions, the delay
 * before each automatic prune, and the timer chain that runs them. The chain
 * is a series of unref'd timeouts, so it never keeps a process alive; it
 * starts on first use and is rescheduled after every prune, manual ones
 * included. The store hands it the batch statement and nothing else.
 *
 * @module
 */
import { clearTimeout, setTimeout } from "node:timers";
import type { PruneDelayRandomizer } from "./types.ts";
import { nowSeconds } from "./expiry.ts";

/** Rows deleted per prune statement: short transactions, bounded WAL bursts. */
export const PRUNE_BATCH_SIZE = 1000;

/** The longest delay a timer accepts (Node turns a longer one into 1 ms). */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/**
 * Deletes up to `limit` sessions expired at `now` (epoch seconds); resolves
 * to the count deleted, or `null` when another session is pruning the table.
 */
export type PruneBatch = (now: number, limit: number) => Promise<number | null>;

/**
 * Deletes the sessions expired at `now`, one batch per short transaction,
 * until a batch comes back short, another session holds the table's prune
 * lock, or `stopped()` says so. The store and the command line share it.
 *
 * @returns The number of sessions deleted.
 */
export async function pruneInBatches(
  batch: PruneBatch,
  now: number,
  stopped: () => boolean = () => false,
): Promise<number> {
  let deleted = 0;
  while (!stopped()) {
    const count = await batch(now, PRUNE_BATCH_SIZE);
    if (count === null) break;
    deleted += count;
    if (count < PRUNE_BATCH_SIZE) break;
  }
  return deleted;
}

/** Spreads a delay over 50–150 % of itself, as connect-pg-simple does. */
export function randomizedDelay(delayMs: number): number {
  return Math.ceil(delayMs / 2 + delayMs * Math.random());
}

/**
 * The delay before the next automatic prune: the interval spread by the
 * randomizer (by default {@linkcode randomizedDelay}; `false` keeps the
 * interval). A randomizer that returns no usable number gets the interval;
 * the result never exceeds what a timer accepts.
 */
export function pruneDelay(
  intervalMs: number,
  randomizer: PruneDelayRandomizer | false | undefined,
): number {
  const delay = randomizer === false
    ? intervalMs
    : (randomizer ?? randomizedDelay)(intervalMs);
  const usable = typeof delay === "number" && Number.isFinite(delay) &&
    delay >= 0;
  return Math.min(usable ? delay : intervalMs, MAX_TIMER_DELAY_MS);
}

/** What a pruner needs; see {@linkcode createPruner}. */
export interface PrunerOptions {
  /** Milliseconds between automatic prunes, or `false` for none. */
  intervalMs: number | false;
  /** Spreads each delay; see {@linkcode pruneDelay}. */
  randomizer: PruneDelayRandomizer | false | undefined;
  /** One batch, in its own bounded call. */
  batch: PruneBatch;
  /** Told of an automatic prune that failed; the chain goes on. */
  onError(error: unknown): void;
}

/** Schedules prunes one after another; see {@linkcode createPruner}. */
export interface Pruner {
  /** Starts the chain if it is not running yet (idempotent). */
  start(): void;
  /** Runs a prune now (joining one already in flight), then restarts the chain. */
  pruneNow(): Promise<number>;
  /** Stops the chain for good and waits for a prune in flight to end. */
  stop(): Promise<void>;
}

/** Makes the prune timer of one store. */
export function createPruner(options: PrunerOptions): Pruner {
  const { intervalMs, randomizer, batch } = options;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let inFlight: Promise<number> | undefined;
  let pruning = false;
  let stopped = false;

  const report = (error: unknown) => {
    // Background work never throws past the store, whatever errorLog does.
    try {
      options.onError(error);
    } catch (thrown) {
      try {
        console.error("connect-postgres-simple: errorLog threw:", thrown);
      } catch {
        // nowhere left to report it
      }
    }
  };

  const schedule = () => {
    // While a prune runs, the next one is scheduled when it ends.
    if (stopped || timer !== undefined || pruning || intervalMs === false) {
      return;
    }
    timer = setTimeout(() => {
      timer = undefined;
      pruneNow().catch(report);
    }, pruneDelay(intervalMs, randomizer));
    timer.unref();
  };

  const pruneNow = (): Promise<number> => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (inFlight === undefined) {
      // Set first: the batch may start the chain again as it runs.
      pruning = true;
      inFlight = pruneInBatches(batch, nowSeconds(), () => stopped).finally(
        () => {
          pruning = false;
          inFlight = undefined;
          schedule();
        },
      );
    }
    return inFlight;
  };

  return {
    start: schedule,
    pruneNow,
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      await inFlight?.catch(() => {});
    },
  };
}
