/**
 * The reading process of the invalidation-delay measurement (`cache.ts`):
 * a store with `cache` on the bench's table, from `DATABASE_URL`.
 *
 * `deno run -A invalidation_child.ts <schema>` prints `ready`, then for each
 * line on stdin:
 * - `prime <sid>`: reads the session (so it is cached), prints `primed`;
 * - `watch <sid> <v>`: prints `watching`, then reads the session over and
 *   over (a cache hit each time, yielding to I/O between reads) until its
 *   `v` is `<v>`, and prints `seen <ms>`, the wall-clock time in
 *   milliseconds (`performance.timeOrigin + performance.now()`).
 *
 * @module
 */
import process from "node:process";
import { createInterface } from "node:readline";
import { setImmediate } from "node:timers";
import session from "express-session";
import connectPostgresSimple from "../../mod.ts";

const [schemaName] = Deno.args;
const store = new (connectPostgresSimple(session))({
  schemaName,
  cache: true,
  pruneSessionInterval: false,
});

console.log("ready");
for await (const line of createInterface({ input: process.stdin })) {
  const [command, sid, v] = line.split(" ");
  if (command === "prime") {
    await store.get(sid);
    console.log("primed");
  } else if (command === "watch") {
    console.log("watching");
    const want = Number(v);
    for (;;) {
      const sess = await store.get(sid) as { v?: number } | null;
      if (sess?.v === want) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    console.log(`seen ${performance.timeOrigin + performance.now()}`);
  } else if (command === "quit") {
    break;
  }
}
await store.close();
