// Type-checked by `deno task test:npm` with tsc (strict, module nodenext)
// against the installed package: the CommonJS entry through `import = require`.
import connectPostgresSimple = require("connect-postgres-simple");
import session = require("express-session");
import express = require("express");

const PostgresStore = connectPostgresSimple(session);
const options: connectPostgresSimple.PostgresStoreOptions = {
  tableName: "user_sessions",
  ttl: 3600,
};
const store: connectPostgresSimple.PostgresStore = new PostgresStore(options);
const same: connectPostgresSimple.PostgresStoreClass = connectPostgresSimple
  .connectPostgresSimple(session);
const also: typeof PostgresStore = connectPostgresSimple.default(session);
const callback: connectPostgresSimple.Callback<number> = () => {};
store.length(callback);

express().use(
  session({ store, secret: "s", resave: false, saveUninitialized: false }),
);
export = [same, also];

// @ts-expect-error an unknown option is a compile error
new PostgresStore({ bogus: 1 });
// @ts-expect-error ttl is a number of seconds
new PostgresStore({ ttl: "x" });
