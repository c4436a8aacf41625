// Type-checked by `deno task test:npm` with tsc (strict, module nodenext)
// against the installed package: the Hono adapter from CommonJS.
import hono = require("connect-postgres-simple/hono");

const options: hono.HonoSessionStoreOptions = { tableName: "hono_sessions" };
const store: hono.HonoSessionStore = new hono.HonoSessionStore(options);
export = store.getSessionById("sid").then((data) => data?._data);

// @ts-expect-error touchAfter does not apply to hono-sessions
new hono.HonoSessionStore({ touchAfter: 60 });
