/**
 * A PostgreSQL session store for express-session, on postgres.js.
 *
 * A drop-in for connect-pg-simple: the same `table.sql`, the same options
 * (less the pg-only ones), the same expiry rules, so both stores can serve
 * one table at once. Every method takes an optional callback and returns a
 * promise.
 *
 * Start with {@linkcode connectPostgresSimple}: hand it the express-session
 * module and it returns the store class.
 *
 * @example Express on Deno
 * ```ts ignore
 * import express from "npm:express";
 * import session from "npm:express-session";
 * import postgres from "npm:postgres";
 * import connectPostgresSimple from "jsr:@cps/connect-postgres-simple";
 *
 * const PostgresStore = connectPostgresSimple(session);
 * const app = express();
 * app.use(session({
 *   store: new PostgresStore({ postgres: postgres(Deno.env.get("DATABASE_URL")!) }),
 *   secret: Deno.env.get("SESSION_SECRET")!,
 *   resave: false,
 *   saveUninitialized: false,
 *   cookie: { maxAge: 30 * 24 * 60 * 60 * 1000 },
 * }));
 * ```
 *
 * @module
 */
import { createStoreClass } from "./src/store.ts";
import type { PostgresStoreClass, SessionModule } from "./src/types.ts";

export { CallTimeoutError } from "./src/calls.ts";

export type { CacheOptions } from "./src/cache_options.ts";
export type {
  Callback,
  DestroyOfOptions,
  ErrorLog,
  PostgresSql,
  PostgresStore,
  PostgresStoreClass,
  PostgresStoreOptions,
  PruneDelayRandomizer,
  SessionModule,
  SessionOwner,
  StoredSession,
} from "./src/types.ts";

/**
 * Makes the store class from the express-session module, as
 * connect-pg-simple does: pass `session` (its `Store` is used, or
 * `session.session.Store` for older wrappers).
 *
 * @param session The express-session module.
 * @returns The store class; construct it with {@linkcode PostgresStoreOptions}.
 * @throws {TypeError} when `session` carries no `Store` class.
 *
 * @example
 * ```ts ignore
 * import session from "npm:express-session";
 * import connectPostgresSimple from "jsr:@cps/connect-postgres-simple";
 *
 * const PostgresStore = connectPostgresSimple(session);
 * const store = new PostgresStore({ tableName: "user_sessions", ttl: 3600 });
 * await store.set("sid-1", { cookie: { maxAge: 60_000 }, user: "ada" } as any);
 * console.log(await store.get("sid-1"), await store.length());
 * await store.close();
 * ```
 */
export function connectPostgresSimple(
  session: SessionModule,
): PostgresStoreClass {
  const holder = session as Partial<
    { Store: unknown; session: { Store?: unknown } }
  >;
  const Store = holder?.Store ?? holder?.session?.Store;
  if (typeof Store !== "function") {
    throw new TypeError(
      "connect-postgres-simple: pass the express-session module, e.g. connectPostgresSimple(session)",
    );
  }
  return createStoreClass(Store as Parameters<typeof createStoreClass>[0]);
}

export default connectPostgresSimple;
