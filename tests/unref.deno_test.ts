import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { connect, uniqueName } from "./_helpers.ts";

test("the prune timer never keeps a process alive", async () => {
  const schema = uniqueName("unref");
  const script = `
    import postgres from "postgres";
    import session from "express-session";
    import connectPostgresSimple from "${
    new URL("../mod.ts", import.meta.url).href
  }";
    const sql = postgres(process.env.DATABASE_URL, { onnotice() {} });
    const Store = connectPostgresSimple(session);
    const store = new Store({ postgres: sql, pruneSessionInterval: 3600,
      createTableIfMissing: true, schemaName: ${JSON.stringify(schema)} });
    await store.get("x");
    await sql.end();
    console.log("done");
  `;
  const result = spawnSync(process.execPath, ["eval", "--ext=ts", script], {
    encoding: "utf8",
    timeout: 60_000,
    cwd: new URL("..", import.meta.url).pathname,
  });
  const sql = connect();
  await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await sql.end();
  assert.equal(
    result.signal,
    null,
    "the process exited by itself, without being killed",
  );
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /done/);
});
