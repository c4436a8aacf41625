/**
 * An app whose wall clock is wrong, as a child process of
 * `clock_skew_test.ts`. It imports `_skewed_clock.ts` before the store, so
 * every `Date` the store sees is off; it prints one JSON line and exits 0.
 *
 * - `deadline <skewMs>`: two calls on a database that never answers
 *   (`callTimeout` 0.5 s); the wall clock steps by `skewMs` between them.
 *   Prints each call's error code and its duration on the monotonic clock.
 * - `prune <schema> <skewMs> [maxLifetime]`: one `pruneSessions()` on
 *   `<schema>.session` with the wall clock `skewMs` off (and the store's
 *   `maxLifetime`, when given); prints the count deleted.
 * - `errorlog <schema>`: automatic prunes every second on a missing table,
 *   with an `errorLog` that throws; prints how many times it was called
 *   once it has been called three times (a process that crashed prints
 *   nothing and exits non-zero).
 *
 * @module
 */
import { stepClock } from "./_skewed_clock.ts";
import process from "node:process";
import { createServer, type Socket } from "node:net";
import postgres from "postgres";
import { PostgresStoreClass } from "./_helpers.ts";

const [mode, ...args] = process.argv.slice(2);

/** A loopback server that accepts connections and never says a word. */
async function silentServer(): Promise<{ port: number; close(): void }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

/** Runs `call` and resolves to its error code and duration in ms. */
async function timed(
  call: () => Promise<unknown>,
): Promise<{ code: string; ms: number }> {
  const started = performance.now();
  try {
    await call();
    return { code: "ok", ms: performance.now() - started };
  } catch (error) {
    const code = String((error as { code?: unknown }).code ?? error);
    return { code, ms: performance.now() - started };
  }
}

async function deadline(skewMs: number): Promise<unknown> {
  const server = await silentServer();
  const sql = postgres({ host: "127.0.0.1", port: server.port, max: 2 });
  const store = new PostgresStoreClass({
    postgres: sql,
    callTimeout: 0.5,
    pruneSessionInterval: false,
  });
  try {
    const first = timed(() => store.get("a"));
    await new Promise((resolve) => setTimeout(resolve, 100));
    stepClock(skewMs);
    const second = timed(() => store.get("b"));
    return { calls: await Promise.all([first, second]) };
  } finally {
    await store.close();
    await sql.end({ timeout: 0 });
    server.close();
  }
}

async function prune(
  schemaName: string,
  skewMs: number,
  maxLifetime?: number,
): Promise<unknown> {
  stepClock(skewMs);
  const store = new PostgresStoreClass({
    schemaName,
    pruneSessionInterval: false,
    maxLifetime,
  });
  try {
    return { deleted: await store.pruneSessions() };
  } finally {
    await store.close();
  }
}

async function errorlog(schemaName: string): Promise<unknown> {
  let calls = 0;
  let third: () => void = () => {};
  const thrice = new Promise<void>((resolve) => third = resolve);
  const store = new PostgresStoreClass({
    schemaName,
    tableName: "missing",
    pruneSessionInterval: 1,
    pruneSessionRandomizedInterval: false,
    errorLog: () => {
      if (++calls === 3) third();
      throw new Error("errorLog itself fails");
    },
  });
  try {
    await store.get("start the prune timer").catch(() => {});
    await thrice;
    return { calls };
  } finally {
    await store.close();
  }
}

const result = mode === "deadline"
  ? await deadline(Number(args[0]))
  : mode === "prune"
  ? await prune(args[0], Number(args[1]), args[2] ? Number(args[2]) : undefined)
  : mode === "errorlog"
  ? await errorlog(args[0])
  : { error: `unknown mode ${mode}` };
console.log(JSON.stringify(result));
