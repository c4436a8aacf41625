/**
 * The demo on Deno: an Express app (`npm:express`, `npm:express-session`)
 * whose sessions live in PostgreSQL through this store.
 *
 * ```sh
 * deno task demo [--port N] [--host HOST] [--schema NAME]
 * ```
 *
 * `deno task demo` starts a PostgreSQL (kept in `.tmp/demo-pg`, so sessions
 * survive a restart) when `DATABASE_URL` is unset. The app itself is in
 * `run.ts` and `app.ts` beside this file; the same code runs on Node with
 * `deno task demo:node` (`prepare_node.ts`, `node_main.cjs`).
 *
 * @module
 */
import process from "node:process";
import connectPostgresSimple from "../../mod.ts";
import { runDemo } from "./run.ts";

if (import.meta.main) {
  process.exit(await runDemo(connectPostgresSimple, Deno.args));
}
