/**
 * A PostgreSQL session store for [Hono](https://hono.dev) with
 * [hono-sessions](https://github.com/jcs224/hono_sessions), on postgres.js:
 * {@linkcode HonoSessionStore}. It uses the express-session store's table
 * and options, so Express and Hono apps can share one table, its pruning and
 * the command line. Nothing here loads express-session.
 *
 * Deno, Bun and Node alike: `jsr:@cps/connect-postgres-simple/hono` or
 * `connect-postgres-simple/hono` from npm.
 *
 * @example Hono on Deno
 * ```ts ignore
 * import { Hono } from "npm:hono@4";
 * import { type Session, sessionMiddleware } from "npm:hono-sessions@0.8";
 * import postgres from "npm:postgres@3";
 * import { HonoSessionStore } from "jsr:@cps/connect-postgres-simple/hono";
 *
 * const store = new HonoSessionStore({
 *   postgres: postgres(Deno.env.get("DATABASE_URL")!),
 *   createTableIfMissing: true,
 * });
 * const app = new Hono<{ Variables: { session: Session<{ visits: number }> } }>();
 * app.use("*", sessionMiddleware({ store, expireAfterSeconds: 30 * 86400 }));
 * app.get("/", (c) => {
 *   const session = c.get("session");
 *   session.set("visits", (session.get("visits") ?? 0) + 1);
 *   return c.json({ visits: session.get("visits") });
 * });
 * Deno.serve(app.fetch);
 * ```
 *
 * @module
 */
export {
  type HonoSessionData,
  HonoSessionStore,
  type HonoSessionStoreOptions,
} from "./src/hono.ts";
export { CallTimeoutError } from "./src/calls.ts";
export type { CacheOptions } from "./src/cache_options.ts";
