/**
 * Pruning: the batch loop that deletes expired sessions, and the automatic
 * prune timer, a chain of unref'd timeouts, so it never keeps a process
 * alive, started on first use and restarted after every prune.
 *
 * @module
 */
import { clearTimeout, setTimeout } from "node:timers";
import type { Queries } from "./queries.ts";

/** Schedules prunes one after another; see {@linkcode createPruner}. */
export interface Pruner {
  /** Starts the chain if it is not running yet (idempotent). */
  start(): void;
  /** Runs a prune now (joining one already in flight), then restarts the chain. */
  pruneNow(): Promise<number>;
  /** Stops the chain for good and waits for a prune in flight to end. */
  stop(): Promise<void>;
}

/**
 * Makes a prune timer around `prune`.
 *
 * @param prune Deletes expired sessions; resolves to the count deleted.
 * @param nextDelay The delay in milliseconds before the next automatic
 * prune, or `false` for no automatic pruning.
 * @param onError Told of an automatic prune that failed; the chain goes on.
 */
export function createPruner(
  prune: () => Promise<number>,
  nextDelay: () => number | false,
  onError: (error: unknown) => void,
): Pruner {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let inFlight: Promise<number> | undefined;
  let stopped = false;

  const schedule = () => {
    if (stopped || timer !== undefined) return;
    const delay = nextDelay();
    if (delay === false) return;
    timer = setTimeout(() => {
      timer = undefined;
      pruneNow().catch(onError);
    }, delay);
    timer.unref();
  };

  const pruneNow = (): Promise<number> => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    inFlight ??= prune().finally(() => {
      inFlight = undefined;
      schedule();
    });
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

/** Rows deleted per prune statement: short transactions, bounded WAL bursts. */
export const PRUNE_BATCH_SIZE = 1000;

/**
 * Deletes the sessions expired at `now`, one batch per short transaction,
 * until a batch comes back short, another session holds the table's prune
 * lock, or `stop()` says so. The store's prune and the command line's share it.
 *
 * @returns The number of sessions deleted.
 */
export async function pruneInBatches(
  queries: Pick<Queries, "pruneBatch">,
  now: number,
  stop: () => boolean = () => false,
): Promise<number> {
  let deleted = 0;
  while (!stop()) {
    const count = await queries.pruneBatch(now, PRUNE_BATCH_SIZE);
    if (count === null) break;
    deleted += count;
    if (count < PRUNE_BATCH_SIZE) break;
  }
  return deleted;
}
