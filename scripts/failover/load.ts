/**
 * The load of the failover test, run as a child process: the store, with
 * its own pool (no `postgres` option: it connects from `DATABASE_URL`),
 * called by `concurrency` workers until the parent says `stop`. Each worker
 * writes increasing versions of its own session ids and remembers which
 * were acknowledged; every `getEvery`-th call reads one back and notes a
 * version older than the last acknowledged. Once stopped, every id is read
 * back through the store. See `protocol.ts` for the exchange.
 *
 * Runs on Deno (`deno run -A scripts/failover/load.ts`, the store from
 * `mod.ts`) and, bundled, on Node with the npm package (`STORE_MODULE=
 * connect-postgres-simple`).
 *
 * @module
 */
import session from "express-session";
import process from "node:process";
import { writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import type { connectPostgresSimple } from "../../mod.ts";
import {
  epochMs,
  type LoadConfig,
  type LoadEvent,
  type LoadResult,
  OK,
  type OlderRead,
  OP_GET,
  OP_SET,
} from "./protocol.ts";

/** The part of the store the load uses. */
interface LoadStore {
  set(sid: string, session: object): Promise<void>;
  get(sid: string): Promise<unknown>;
  close(): Promise<void>;
}

const SESSION_MS = 3_600_000;

function emit(event: LoadEvent): void {
  process.stdout.write(JSON.stringify(event) + "\n");
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  if (typeof code === "string" && code) return code;
  return (error as Error)?.name ?? typeof error;
}

function versionOf(found: unknown): number | null {
  const v = (found as { v?: unknown } | null)?.v;
  return typeof v === "number" ? v : null;
}

async function main(): Promise<void> {
  const config: LoadConfig = JSON.parse(process.env.FAILOVER_LOAD ?? "");
  const specifier = process.env.STORE_MODULE ??
    new URL("../../mod.ts", import.meta.url).href;
  const factory: typeof connectPostgresSimple =
    (await import(specifier)).default;
  const Store = factory(session);
  const store: LoadStore = new Store({ pruneSessionInterval: false });

  const base = epochMs();
  const calls: number[] = [];
  const codes: string[] = [];
  const messages: Record<string, string> = {};
  const acked: Record<string, number> = {};
  const sent: Record<string, number> = {};
  const older: OlderRead[] = [];
  let stopping = false;
  let readySent = false;

  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) => {
    if (line.trim() === "stop") stopping = true;
  });
  lines.on("close", () => stopping = true);

  /** Runs one call and records it; resolves to its result, or `undefined` if it failed. */
  async function call<T>(
    op: number,
    work: () => Promise<T>,
  ): Promise<{ value: T } | undefined> {
    const start = epochMs();
    const t0 = performance.now();
    let code = OK;
    let value: T | undefined;
    try {
      value = await work();
    } catch (error) {
      const name = codeOf(error);
      code = codes.indexOf(name);
      if (code < 0) {
        code = codes.push(name) - 1;
        messages[name] = String((error as Error)?.message ?? error).slice(
          0,
          300,
        );
      }
    }
    calls.push(
      Math.round((start - base) * 100) / 100,
      Math.round((performance.now() - t0) * 100) / 100,
      op,
      code,
    );
    if (code === OK && !readySent) {
      readySent = true;
      emit({ event: "ready" });
    }
    return code === OK ? { value: value as T } : undefined;
  }

  async function read(sid: string, final: boolean): Promise<void> {
    const before = acked[sid] ?? 0;
    const found = await call(OP_GET, () => store.get(sid));
    if (!found) return;
    const got = versionOf(found.value);
    if ((got ?? 0) < before) {
      older.push({ sid, acked: before, got, at: epochMs(), final });
    }
  }

  /** Calls the store until stopped; resolves to the worker's session ids. */
  async function worker(w: number): Promise<string[]> {
    const sids = Array.from(
      { length: config.sidsPerWorker },
      (_, k) => `fo-${w}-${k}`,
    );
    for (let i = 0; !stopping; i++) {
      if (i % config.getEvery === config.getEvery - 1) {
        await read(sids[i % sids.length], false);
        continue;
      }
      const sid = sids[i % sids.length];
      const v = sent[sid] = (sent[sid] ?? 0) + 1;
      const expires = new Date(Date.now() + SESSION_MS).toISOString();
      const ok = await call(
        OP_SET,
        () =>
          store.set(sid, {
            cookie: { originalMaxAge: SESSION_MS, expires },
            v,
            w,
          }),
      );
      if (ok) acked[sid] = v;
    }
    return sids;
  }

  const stopped = await Promise.all(
    Array.from({ length: config.concurrency }, async (_, w) => {
      const sids = await worker(w);
      const t0 = performance.now();
      for (const sid of sids) await read(sid, true);
      return performance.now() - t0;
    }),
  );
  const slowest = Math.max(...stopped);
  if (slowest > 5000) {
    console.error(
      `load: reading every id back after the stop took up to ${
        (slowest / 1000).toFixed(1)
      } s`,
    );
  }
  const runtime = process.versions.deno
    ? `Deno ${process.versions.deno}`
    : `Node ${process.version}`;
  const result: LoadResult = {
    runtime,
    base,
    codes,
    calls,
    messages,
    acked,
    sent,
    older,
  };
  writeFileSync(config.resultFile, JSON.stringify(result));
  emit({ event: "done" });
  await Promise.race([store.close().catch(() => {}), sleep(5000)]);
}

main().then(
  () => process.exit(0),
  (error) => {
    emit({ event: "error", message: String((error as Error)?.stack ?? error) });
    process.exit(1);
  },
);
