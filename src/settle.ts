/**
 * Promise-first results with an optional Node-style callback.
 *
 * @module
 */
import type { Callback } from "./types.ts";

const ignore = () => {};

/**
 * Hands the outcome of `work` to `callback` when there is one, else returns
 * `work` itself. Either way no rejection is left unhandled: with a callback
 * the error goes to the callback only; without one the returned promise
 * still rejects for whoever awaits it, but a caller that drops it (as
 * express-session does with `destroy`) does not crash the process.
 *
 * A callback that throws is not swallowed or called twice: its error is
 * rethrown outside the promise chain, as an uncaught exception.
 */
export function settle<T>(
  work: Promise<T>,
  callback: Callback<T> | undefined | null,
): Promise<T> | Promise<void> {
  // Anything that is not a function (undefined, or a stray null) means no callback.
  if (typeof callback !== "function") {
    work.catch(ignore);
    return work;
  }
  return work.then(
    (result) => deliver(callback, null, result),
    (error) => deliver(callback, toError(error)),
  );
}

function deliver<T>(
  callback: Callback<T>,
  error: Error | null,
  result?: T,
): void {
  try {
    if (error) callback(error);
    else callback(null, result);
  } catch (thrown) {
    queueMicrotask(() => {
      throw thrown;
    });
  }
}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
