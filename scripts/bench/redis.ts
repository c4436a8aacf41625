/**
 * Redis for the read cache's benchmark: a throwaway `redis-server` (the
 * system's, e.g. Debian's package) on a free loopback port, persisting
 * like a Redis that keeps sessions across restarts (`appendonly yes`,
 * `appendfsync everysec`, no RDB snapshots), and connect-redis 10 on it as
 * a subject.
 *
 * @module
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SessionData } from "express-session";
import { createClient } from "redis";
import { RedisStore } from "connect-redis";
import { freePort } from "../postgres/server.ts";
import { callbackStore, type OpenSubject } from "./subjects.ts";

/** A running Redis server. */
export interface RedisServer {
  url: string;
  pid: number;
  version: string;
  stop(): Promise<void>;
}

/**
 * Starts `redis-server` from the PATH; resolves to the server, or to the
 * reason it cannot (so the bench can skip the subject and say why).
 */
export async function startRedis(): Promise<RedisServer | string> {
  let version: string;
  try {
    const out = await new Deno.Command("redis-server", { args: ["--version"] })
      .output();
    version = /v=(\S+)/.exec(new TextDecoder().decode(out.stdout))?.[1] ?? "?";
  } catch {
    return "redis-server is not installed (Debian: apt-get install redis-server)";
  }
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), "cps-redis-"));
  const child = new Deno.Command("redis-server", {
    args: [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--save",
      "",
      "--appendonly",
      "yes",
      "--appendfsync",
      "everysec",
      "--logfile",
      join(dir, "redis.log"),
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `redis://127.0.0.1:${port}`;
  // A bench interrupted (Ctrl-C, or with_postgres passing on a signal) stops
  // its Redis too, instead of leaving it running.
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  const onSignal = () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    Deno.exit(130);
  };
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  const stop = async () => {
    for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await child.status;
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const client = createClient({ url });
      await client.connect();
      await client.ping();
      await client.close();
      return { url, pid: child.pid, version, stop };
    } catch (error) {
      if (Date.now() > deadline) {
        await stop();
        return `redis-server did not start: ${error}`;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** connect-redis 10 on one client of `redis` (which pipelines on its connection). */
export async function openRedisSubject(url: string): Promise<OpenSubject> {
  const client = createClient({ url });
  client.on("error", () => {});
  await client.connect();
  const store = new RedisStore({ client });
  return {
    ...callbackStore(store as never),
    close: () => client.close(),
  };
}

/** Writes every session into Redis through connect-redis, as the PostgreSQL table holds them. */
export async function fillRedis(
  url: string,
  sids: string[],
  sessions: SessionData[],
): Promise<void> {
  const subject = await openRedisSubject(url);
  try {
    for (let i = 0; i < sids.length; i += 100) {
      await Promise.all(
        sids.slice(i, i + 100).map((sid, k) =>
          subject.set(sid, sessions[i + k])
        ),
      );
    }
  } finally {
    await subject.close();
  }
}
