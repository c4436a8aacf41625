/**
 * One app instance, as a child process of `multi_instance_test.ts`: a store
 * on the table the test names, with its own connection from `DATABASE_URL`.
 *
 * `… _instance_child.ts load <schema> <milliseconds>`: sets and reads short-lived
 * sessions until the time is up, pruning every second.
 * `… _instance_child.ts create <schema>`: `createTableIfMissing` on a schema
 * that may not exist yet; one set and get.
 *
 * Each prints `ready` and waits for a line `go` on stdin, so that a test can
 * start them all at once. Then it prints one JSON line (`{ "calls": n, "errors": [...] }`) and exits 0 when
 * every call succeeded, 1 otherwise.
 *
 * @module
 */
import process from "node:process";
import { setTimeout as wait } from "node:timers/promises";
import { createInterface } from "node:readline";
import { PostgresStoreClass, sessionData } from "./_helpers.ts";

const [mode, schemaName, millis] = process.argv.slice(2);
const errors: string[] = [];
let calls = 0;

const store = new PostgresStoreClass({
  schemaName,
  createTableIfMissing: mode === "create",
  pruneSessionInterval: mode === "load" ? 1 : false,
  errorLog: (message, error) => errors.push(`${message} ${error}`),
});

console.log("ready");
for await (const line of createInterface({ input: process.stdin })) {
  if (line === "go") break;
}

try {
  if (mode === "create") {
    await store.set("created-by", sessionData({ pid: process.pid }));
    await store.get("created-by");
    calls += 2;
  } else {
    const end = Date.now() + Number(millis);
    for (let i = 0; Date.now() < end; i++) {
      const sid = `${process.pid}-${i}`;
      await store.set(sid, sessionData({ i }, 1));
      await store.get(sid);
      calls += 2;
      await wait(100); // pacing: an app serving ten requests a second
    }
  }
} catch (error) {
  errors.push(String(error));
} finally {
  await store.close();
}
console.log(JSON.stringify({ calls, errors }));
process.exitCode = errors.length ? 1 : 0;
