// Type-checked by `deno task test:npm` with tsc (strict, module nodenext)
// against the installed package: the Hono adapter (`./hono`), as
// hono-sessions takes it.
import { Hono } from "hono";
import { type Session, sessionMiddleware, type Store } from "hono-sessions";
import postgres from "postgres";
import {
  CallTimeoutError,
  type HonoSessionData,
  HonoSessionStore,
  type HonoSessionStoreOptions,
} from "connect-postgres-simple/hono";

const options: HonoSessionStoreOptions = {
  postgres: postgres("postgres://localhost/app"),
  schemaName: "app",
  tableName: "hono_sessions",
  ttl: 3600,
  createTableIfMissing: true,
  pruneSessionInterval: 900,
  callTimeout: 5,
  errorLog: (message: string, error: unknown) => console.error(message, error),
};
const store = new HonoSessionStore(options);
const asStore: Store = store; // hono-sessions' Store interface

const app = new Hono<{ Variables: { session: Session<{ visits: number }> } }>();
app.use("*", sessionMiddleware({ store, expireAfterSeconds: 3600 }));
app.get("/", (c) => {
  const session = c.get("session");
  session.set("visits", (session.get("visits") ?? 0) + 1);
  return c.json({ visits: session.get("visits") });
});

export async function use(): Promise<number> {
  const data: HonoSessionData | null = await store.getSessionById("sid");
  await asStore.persistSessionData("sid", data ?? {
    _data: {},
    _expire: null,
    _delete: false,
    _accessed: null,
  });
  try {
    return await store.pruneSessions();
  } catch (error) {
    if (error instanceof CallTimeoutError) return -1;
    throw error;
  } finally {
    await store.close();
  }
}

// @ts-expect-error touchAfter does not apply to hono-sessions
new HonoSessionStore({ touchAfter: 60 });
// @ts-expect-error disableTouch does not apply to hono-sessions
new HonoSessionStore({ disableTouch: true });
// @ts-expect-error ttl is a number of seconds
new HonoSessionStore({ ttl: "x" });
