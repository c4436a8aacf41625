/**
 * The second process of the read cache's tests (`cache_test.ts`): a store
 * with `cache` on the table the test names, with its own pool from
 * `DATABASE_URL` (its connections named by `PGAPPNAME`, so a test can find
 * them) and, when `CACHE_LISTEN_URL` is set, its listener on that server
 * (behind PgBouncer: the server itself); `CACHE_MAX_AGE` sets `maxAge`.
 *
 * `… _cache_child.ts <schema>` prints `ready`, then answers each line of
 * JSON on stdin, `{ id, op, sid, value, ms }`, with one line of JSON,
 * `{ id, result }` or `{ id, error }`:
 * - `get`: the session, or `null`;
 * - `version`: the session's `v`, or `null` when there is no session;
 * - `until`: reads until the session equals `value` (`null`: until there is
 *   none), for at most `ms`; the result is `{ session, reads }`, the last
 *   session read and how many reads it took;
 * - `set`: stores `value` as the session;
 * - `close`: closes the store and answers; then stdin is left alone, so the
 *   process exits by itself only if nothing (a listener) keeps it alive.
 *
 * At exit it prints `{ "errors": [...], "rejections": [...] }`: what
 * `errorLog` received and any unhandled rejection.
 *
 * @module
 */
import process from "node:process";
import { isDeepStrictEqual } from "node:util";
import { createInterface } from "node:readline";
import postgres from "postgres";
import { PostgresStoreClass } from "./_helpers.ts";

const [schemaName] = process.argv.slice(2);
const errors: string[] = [];
const rejections: string[] = [];
process.on("unhandledRejection", (reason) => rejections.push(String(reason)));

const listenUrl = process.env.CACHE_LISTEN_URL;
const listen = listenUrl
  ? postgres(listenUrl, { max: 1, onnotice: () => {} })
  : undefined;
const maxAge = process.env.CACHE_MAX_AGE
  ? Number(process.env.CACHE_MAX_AGE)
  : undefined;
const store = new PostgresStoreClass({
  schemaName,
  pruneSessionInterval: false,
  cache: { listen, maxAge },
  errorLog: (message, error) => errors.push(`${message} ${error}`),
});

interface Command {
  id: number;
  op: "get" | "version" | "until" | "set" | "close";
  sid: string;
  value: unknown;
  ms: number;
}

async function answer(command: Command): Promise<unknown> {
  const { op, sid, value, ms } = command;
  switch (op) {
    case "get":
      return await store.get(sid);
    case "version":
      return ((await store.get(sid)) as { v?: unknown } | null)?.v ?? null;
    case "set":
      return await store.set(sid, value as never);
    case "until": {
      const deadline = Date.now() + ms;
      for (let reads = 1;; reads++) {
        const session = await store.get(sid);
        if (isDeepStrictEqual(session, value) || Date.now() > deadline) {
          return { session, reads };
        }
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    }
    case "close":
      await store.close();
      await listen?.end();
      return null;
  }
}

const lines = createInterface({ input: process.stdin });
console.log("ready");
for await (const line of lines) {
  const command = JSON.parse(line) as Command;
  answer(command).then(
    (result) => console.log(JSON.stringify({ id: command.id, result })),
    (error) =>
      console.log(JSON.stringify({ id: command.id, error: String(error) })),
  );
  if (command.op === "close") break;
}
lines.close();
process.on("exit", () => console.log(JSON.stringify({ errors, rejections })));
