import assert from "node:assert/strict";
import process from "node:process";
import {
  BEHIND_PGBOUNCER,
  DATABASE_URL,
  PostgresStoreClass,
  sessionData,
  storeTest,
} from "./_helpers.ts";
import type { PostgresSql, PostgresStore } from "./_helpers.ts";

/** Runs `fn` with environment variables replaced, then puts them back. */
function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const saved = Object.fromEntries(
    Object.keys(vars).map((k) => [k, process.env[k]]),
  );
  const apply = (values: Record<string, string | undefined>) => {
    for (const [key, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
  apply(vars);
  try {
    return fn();
  } finally {
    apply(saved);
  }
}

/** The backends the store's own pool holds open, seen from the server. */
async function ownBackends(sql: PostgresSql): Promise<number> {
  const [{ n }] = await sql`
    SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE application_name = 'connect-postgres-simple' AND pid <> pg_backend_pid()`;
  return n;
}

async function waitFor(
  check: () => Promise<boolean>,
  what: string,
): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function exercise(
  store: PostgresStore,
  row: (sid: string) => Promise<unknown>,
) {
  await store.set("own", sessionData({ via: "own pool" }));
  assert.ok(await row("own"));
  assert.equal(
    (await store.get("own") as unknown as { via: string }).via,
    "own pool",
  );
}

storeTest(
  "without `postgres`, the store opens its own pool from DATABASE_URL and close ends it",
  async ({ sql, schema, row }) => {
    const store = withEnv(
      { DATABASE_URL },
      () =>
        new PostgresStoreClass({
          schemaName: schema,
          pruneSessionInterval: false,
        }),
    );
    try {
      await exercise(store, row);
      assert.ok(await ownBackends(sql) > 0);
    } finally {
      await store.close();
    }
    await waitFor(
      async () => await ownBackends(sql) === 0,
      "the own pool to close",
    );
  },
  { skip: BEHIND_PGBOUNCER && "PgBouncer hides the server's backends" },
);

storeTest(
  "without DATABASE_URL, the store's own pool uses the PG* variables",
  async ({ schema, row }) => {
    const url = new URL(DATABASE_URL);
    const store = withEnv({
      DATABASE_URL: undefined,
      PGHOST: url.hostname,
      PGPORT: url.port || "5432",
      PGUSER: decodeURIComponent(url.username),
      PGPASSWORD: decodeURIComponent(url.password),
      PGDATABASE: url.pathname.slice(1) || undefined,
    }, () =>
      new PostgresStoreClass({
        schemaName: schema,
        pruneSessionInterval: false,
      }));
    try {
      await exercise(store, row);
    } finally {
      await store.close();
    }
  },
);

storeTest(
  "the store's own pool honours PGAPPNAME, else names itself connect-postgres-simple",
  async ({ sql, schema, row }) => {
    const appName = `app_${schema}`;
    const store = withEnv(
      { DATABASE_URL, PGAPPNAME: appName },
      () =>
        new PostgresStoreClass({
          schemaName: schema,
          pruneSessionInterval: false,
        }),
    );
    try {
      await exercise(store, row);
      const [{ n }] = await sql`
        SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE application_name = ${appName}`;
      assert.ok(n > 0, "its connections carry PGAPPNAME");
    } finally {
      await store.close();
    }
  },
  { skip: BEHIND_PGBOUNCER && "PgBouncer hides the server's backends" },
);
