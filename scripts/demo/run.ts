/**
 * Starts and stops the demo: reads the command line, opens the store on
 * `DATABASE_URL`, serves the app, and on Ctrl-C or SIGTERM closes the HTTP
 * server and the store before exiting.
 *
 * Runtime-neutral (`node:` modules only): `deno_main.ts` runs it on Deno
 * with the store from `mod.ts`, `node_main.cjs` on Node with the
 * store from the built npm package.
 *
 * @module
 */
import process from "node:process";
import type { AddressInfo } from "node:net";
import { createServer, type Server } from "node:http";
import { parseArgs } from "node:util";
import type { PostgresStoreClass, SessionModule } from "../../mod.ts";
import session from "express-session";
import { createDemoApp, MAX_LIFETIME_SECONDS } from "./app.ts";

/** The store factory: `connectPostgresSimple` from `mod.ts` or from the npm package. */
export type StoreFactory = (session: SessionModule) => PostgresStoreClass;

const USAGE = `usage: demo [--port N] [--host HOST] [--schema NAME]
  --port    TCP port to listen on (default 3000; 0 picks a free one)
  --host    address to listen on (default 127.0.0.1)
  --schema  PostgreSQL schema for the session table (default: the search_path)
The store connects to DATABASE_URL (\`deno task demo\` starts a PostgreSQL when it is unset).`;

/** A secret for a demo on a developer's machine; production apps set SESSION_SECRET. */
const DEMO_SECRET =
  "connect-postgres-simple demo: not a secret, set SESSION_SECRET";

/** The parsed command line. */
export interface DemoArgs {
  port: number;
  host: string;
  schema: string | undefined;
}

/** Reads the command line: its options, or `"help"` for `--help`; throws a message fit for the user on a bad one. */
export function parseDemoArgs(args: readonly string[]): DemoArgs | "help" {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        port: { type: "string", default: "3000" },
        host: { type: "string", default: "127.0.0.1" },
        schema: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${USAGE}`);
  }
  if (values.help) return "help";
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port) || port > 65535) {
    throw new Error(`--port wants a number from 0 to 65535\n${USAGE}`);
  }
  return { port, host: values.host, schema: values.schema };
}

/** Resolves to the name of the first SIGINT or SIGTERM received from now on. */
function stopSignal(): Promise<string> {
  return new Promise((resolve) => {
    const stop = (signal: string) => () => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      resolve(signal);
    };
    const onInt = stop("SIGINT");
    const onTerm = stop("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
  });
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/**
 * Runs the demo until SIGINT or SIGTERM, then shuts it down cleanly.
 *
 * @param connectPostgresSimple the store factory to demonstrate.
 * @param args the command line (without the program).
 * @returns the exit code: 0 after a clean shutdown, 1 if it could not start,
 *   2 for a bad command line.
 */
export async function runDemo(
  connectPostgresSimple: StoreFactory,
  args: readonly string[] = process.argv.slice(2),
): Promise<number> {
  let options: DemoArgs | "help";
  try {
    options = parseDemoArgs(args);
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
  if (options === "help") {
    console.log(USAGE);
    return 0;
  }
  if (!process.env.DATABASE_URL && !process.env.PGHOST) {
    console.error(
      "demo: DATABASE_URL is not set; `deno task demo` starts a PostgreSQL for you",
    );
    return 1;
  }

  // Listening from the start: a Ctrl-C while connecting still shuts down cleanly.
  const stopped = stopSignal();
  const PostgresStore = connectPostgresSimple(session);
  const store = new PostgresStore({
    createTableIfMissing: true,
    schemaName: options.schema,
    // Who a session belongs to, for sessionsOf and destroyOf: the name
    // signed in with. createTableIfMissing adds the index it needs.
    userKey: "name",
    // However active, a session ends this long after sign-in.
    maxLifetime: MAX_LIFETIME_SECONDS,
  });
  let kept: number;
  try {
    // Connects and creates the table, or says why not.
    const first = await Promise.race([store.length(), stopped]);
    if (typeof first === "string") {
      console.log(`demo: ${first} while connecting, stopping`);
      await store.close();
      return 0;
    }
    kept = first;
  } catch (error) {
    console.error(`demo: cannot use the database: ${(error as Error).message}`);
    await store.close();
    return 1;
  }

  const app = createDemoApp({
    store,
    secret: process.env.SESSION_SECRET || DEMO_SECRET,
  });
  const server = createServer(app);
  try {
    await listen(server, options.port, options.host);
  } catch (error) {
    console.error(`demo: cannot listen: ${(error as Error).message}`);
    await store.close();
    return 1;
  }
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  console.log(
    `demo: ${kept} ${
      kept === 1 ? "session" : "sessions"
    } already in the store; Ctrl-C stops`,
  );
  console.log(`demo: listening on http://${host}:${port}/`);

  const signal = await stopped;
  // A second Ctrl-C while shutting down ends the process at once.
  process.once("SIGINT", () => process.exit(130));
  console.log(`demo: ${signal}, stopping`);
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  await store.close();
  console.log("demo: stopped (HTTP server and store closed)");
  return 0;
}
