/**
 * A Hono app with hono-sessions that counts visits in the session, answering
 * as the Express counter app in `_http.ts` does, so the same `visit` helper
 * drives both. Each runtime serves it its own way: `Deno.serve` on Deno,
 * `Bun.serve` on Bun, @hono/node-server on Node.
 *
 * @module
 */
import { once } from "node:events";
import { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Hono } from "hono";
import { type Session, sessionMiddleware } from "hono-sessions";
import type { CounterApp } from "./_http.ts";
import type { HonoSessionStore } from "../hono.ts";

type Fetch = (request: Request) => Response | Promise<Response>;

/** The part of `Deno.serve` used here. */
interface DenoServe {
  serve(
    options: { hostname: string; port: number; onListen(): void },
    handler: Fetch,
  ): { addr: { port: number }; shutdown(): Promise<void> };
}

/** The part of `Bun.serve` used here. */
interface BunServe {
  serve(options: { hostname: string; port: number; fetch: Fetch }): {
    port: number;
    stop(closeActiveConnections: boolean): unknown;
  };
}

/** The runtime the tests run on: what serves the app. */
export const RUNTIME: "deno" | "bun" | "node" = "Deno" in globalThis
  ? "deno"
  : "Bun" in globalThis
  ? "bun"
  : "node";

/** Serves `fetch` on a free loopback port, as apps on this runtime do. */
async function serve(fetch: Fetch): Promise<CounterApp> {
  const hostname = "127.0.0.1";
  if (RUNTIME === "deno") {
    const deno: DenoServe = Reflect.get(globalThis, "Deno");
    const server = deno.serve({ hostname, port: 0, onListen() {} }, fetch);
    return {
      url: `http://${hostname}:${server.addr.port}`,
      close: () => server.shutdown(),
    };
  }
  if (RUNTIME === "bun") {
    const bun: BunServe = Reflect.get(globalThis, "Bun");
    const server = bun.serve({ hostname, port: 0, fetch });
    return {
      url: `http://${hostname}:${server.port}`,
      async close() {
        await server.stop(true);
      },
    };
  }
  const { createAdaptorServer } = await import("@hono/node-server");
  const server = createAdaptorServer({ fetch });
  if (!(server instanceof Server)) throw new Error("not an HTTP/1.1 server");
  server.listen(0, hostname);
  await once(server, "listening");
  return {
    url: `http://${hostname}:${(server.address() as AddressInfo).port}`,
    async close() {
      const closed = once(server, "close");
      server.close();
      server.closeAllConnections();
      await closed;
    },
  };
}

/** What the app keeps in a session. */
interface Counter {
  count: number;
}

type Env = {
  Variables: { session: Session<Counter>; session_key_rotation: boolean };
};

/** The app's settings for hono-sessions. */
export interface HonoAppOptions {
  /** hono-sessions' `expireAfterSeconds` (default 60); `null` for none. */
  expireAfterSeconds?: number | null;
  /** hono-sessions' `autoExtendExpiration` (its default: `true`). */
  autoExtendExpiration?: boolean;
}

/**
 * Starts an app on a free loopback port: `GET /count` adds a visit,
 * `GET /peek` reads without changing the session, `GET /rotate` moves the
 * session to a new id (hono-sessions' `session_key_rotation`),
 * `POST /logout` deletes the session. The cookie, `session`, holds the
 * session id itself (no `encryptionKey`), and the answers carry it as `id`.
 */
export function startHonoApp(
  store: HonoSessionStore,
  { expireAfterSeconds = 60, autoExtendExpiration }: HonoAppOptions = {},
): Promise<CounterApp> {
  const app = new Hono<Env>();
  app.use(
    "*",
    sessionMiddleware({
      store,
      expireAfterSeconds: expireAfterSeconds ?? undefined,
      autoExtendExpiration,
      cookieOptions: { path: "/", httpOnly: true, sameSite: "Lax" },
    }),
  );
  const answer = (session: Session<Counter>) => ({
    count: session.get("count") ?? 0,
    id: session.getCache()._id,
  });
  app.get("/count", (c) => {
    const session = c.get("session");
    session.set("count", (session.get("count") ?? 0) + 1);
    return c.json(answer(session));
  });
  app.get("/peek", (c) => c.json(answer(c.get("session"))));
  app.get("/rotate", (c) => {
    c.set("session_key_rotation", true);
    return c.json(answer(c.get("session")));
  });
  app.post("/logout", (c) => {
    c.get("session").deleteSession();
    return c.json({});
  });
  return serve(app.fetch);
}
