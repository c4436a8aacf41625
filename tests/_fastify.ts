/**
 * A Fastify 5 app with @fastify/session that counts visits in the session,
 * answering as the Express counter app in `_http.ts` does, so the same
 * `visit` helper drives both.
 *
 * @module
 */
import Fastify from "fastify";
import fastifyCookie from "@fastify/cookie";
import fastifySession from "@fastify/session";
import type { CounterApp } from "./_http.ts";
import { connectPostgresSimple } from "./_helpers.ts";
import type { PostgresStore, PostgresStoreClass } from "../mod.ts";

declare module "fastify" {
  interface Session {
    count?: number;
  }
}

/**
 * The store class made from @fastify/session's own `Store`, as a Fastify
 * app without express-session makes it (no cast: `SessionModule` takes it).
 */
export const FastifyPostgresStore: PostgresStoreClass = connectPostgresSimple(
  fastifySession,
);

/**
 * Starts an app on a free loopback port: `GET /count` adds a visit,
 * `GET /peek` reads without changing the session, `GET /regenerate` moves
 * the session to a new id keeping its count, `POST /logout` destroys it.
 * Cookies are not `Secure` (the tests speak plain HTTP), live 60 s, and an
 * unchanged new session is not saved. With `cookieName: "connect.sid"` (or
 * an Express app's `name`), `cookiePrefix: "s:"` and the Express app's
 * secret, the two apps read each other's cookies.
 */
export async function startFastifyApp(
  store: PostgresStore,
  {
    rolling = true,
    cookieName,
    cookiePrefix,
    // Secrets must be 32 characters or more.
    secret = "a Fastify secret of 32 characters or more",
  }: {
    rolling?: boolean;
    cookieName?: string;
    cookiePrefix?: string;
    secret?: string;
  } = {},
): Promise<CounterApp> {
  const app = Fastify();
  await app.register(fastifyCookie);
  await app.register(fastifySession, {
    secret,
    store,
    rolling,
    cookieName,
    cookiePrefix,
    saveUninitialized: false,
    cookie: { secure: false, maxAge: 60_000 },
  });
  app.get("/count", (request) => {
    request.session.count = (request.session.count ?? 0) + 1;
    return { count: request.session.count, id: request.session.sessionId };
  });
  app.get("/peek", (request) => ({
    count: request.session.count ?? 0,
    id: request.session.sessionId,
  }));
  app.get("/regenerate", async (request) => {
    await request.session.regenerate(["count"]);
    return {
      count: request.session.count ?? 0,
      id: request.session.sessionId,
    };
  });
  app.post("/logout", async (request) => {
    await request.session.destroy();
    return {};
  });
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  return {
    url,
    async close() {
      await app.close();
    },
  };
}
