// Type-checked by `deno task test:npm` with tsc (strict, module nodenext)
// against the installed package: the ESM entry and its types.
import express from "express";
import session from "express-session";
import postgres from "postgres";
import connectPostgresSimple, {
  connectPostgresSimple as named,
  type PostgresStore,
  type PostgresStoreOptions,
} from "connect-postgres-simple";

const PostgresStore = connectPostgresSimple(session);
const options: PostgresStoreOptions = {
  postgres: postgres("postgres://localhost/app"),
  tableName: "user_sessions",
  schemaName: "app",
  ttl: 3600,
  pruneSessionInterval: false,
  errorLog: (message: string, error: unknown) => console.error(message, error),
};
const store: PostgresStore = new PostgresStore(options);
new (named(session))();

const app = express();
app.use(
  session({ store, secret: "s", resave: false, saveUninitialized: false }),
);

export async function use(): Promise<number> {
  const data = await store.get("sid");
  const maxAge: number | null | undefined = data?.cookie.maxAge;
  store.get("sid", (error, result) => void [error, result, maxAge]);
  const ids: string[] = await store.ids();
  return (await store.length()) + ids.length + (await store.pruneSessions());
}

// @ts-expect-error an unknown option is a compile error
new PostgresStore({ bogus: 1 });
// @ts-expect-error ttl is a number of seconds
new PostgresStore({ ttl: "x" });
// @ts-expect-error the factory wants the express-session module
connectPostgresSimple({});
// @ts-expect-error get resolves to session data, not a string
const wrong: Promise<string> = store.get("sid");
void wrong;
