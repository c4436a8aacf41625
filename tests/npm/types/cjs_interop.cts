// Type-checked by `deno task test:npm` with tsc (strict, module nodenext,
// esModuleInterop) against the installed package: the CommonJS entry through
// default and named imports.
import connectPostgresSimple from "connect-postgres-simple";
import { connectPostgresSimple as named } from "connect-postgres-simple";
import type { PostgresStoreOptions } from "connect-postgres-simple";
import session from "express-session";

const options: PostgresStoreOptions = { createTableIfMissing: true };
export const store = new (connectPostgresSimple(session))(options);
export const other = new (named(session))({ disableTouch: true });

// @ts-expect-error an unknown option is a compile error
new (connectPostgresSimple(session))({ bogus: 1 });
// @ts-expect-error ttl is a number of seconds
new (connectPostgresSimple(session))({ ttl: "x" });
