/**
 * The `connect-postgres-simple` command, for deployments where no process
 * lives long enough to prune (serverless, cron), and for the table's shape:
 * `prune`, `create-table`, `migrate`, `stats`. It validates names with the
 * store's own option rules and runs the store's own statements.
 *
 * ```sh
 * deno run -A src/cli.ts prune --schema-name app     # or: deno task cli prune ...
 * npx connect-postgres-simple stats --json           # from the npm package
 * npx connect-postgres-simple migrate --user-key passport.user --created --dry-run
 * ```
 *
 * Exit status: 0 done, 1 database or connection error, 2 usage error.
 *
 * @module
 */
import process from "node:process";
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { parseOptions } from "./options.ts";
import { createQueries, isRefusedWrite, type Queries } from "./queries.ts";
import {
  checkUserIndex,
  createTable,
  migrateTable,
  type MigrationStep,
  migrationSteps,
  readShape,
  tableDefinition,
  type TableFeatures,
} from "./schema.ts";
import { pruneInBatches } from "./pruner.ts";
import { nowSeconds } from "./expiry.ts";
import { createCalls } from "./calls.ts";
import { createServerClock } from "./server_clock.ts";
import { unlessSet } from "./connection.ts";
import type { PostgresSql } from "./types.ts";
import type { TableNames } from "./names.ts";

const NAME = "connect-postgres-simple";
const DEFAULT_CONNECT_TIMEOUT_SECONDS = 10;
const DEFAULT_TIMEOUT_SECONDS = 60;

/**
 * The flags that ask for a table part, shared by `create-table` and
 * `migrate`: to add one, add a row here and its step in `schema.ts`.
 */
const FEATURE_FLAGS = {
  "user-key": {
    type: "string",
    value: "PATH",
    help:
      "the index on the session's owner at this userKey\npath (e.g. passport.user), for sessionsOf and\ndestroyOf; migrate builds it concurrently",
    set: (features: TableFeatures, value: string) => {
      features.userKey = userKeyOf(value);
    },
  },
  created: {
    type: "boolean",
    value: "",
    help:
      'the column "created" and its index, which\nmaxLifetime needs (sessions already there get\nthe time of the migration)',
    set: (features: TableFeatures) => {
      features.created = true;
    },
  },
  timestamptz: {
    type: "boolean",
    value: "",
    help:
      "expire as timestamptz, which no TimeZone setting\ncan misread; migrate reads the old values in the\nconnection's TimeZone (the server's unless set\notherwise) and rewrites the table",
    set: (features: TableFeatures) => {
      features.timestamptz = true;
    },
  },
  notify: {
    type: "boolean",
    value: "",
    help:
      "the triggers that tell the read cache (option\ncache) of every change to the table",
    set: (features: TableFeatures) => {
      features.notify = true;
    },
  },
} as const satisfies Record<string, {
  type: "string" | "boolean";
  value: string;
  help: string;
  set(features: TableFeatures, value: string): void;
}>;

type FeatureFlag = keyof typeof FEATURE_FLAGS;

function featureHelp(): string {
  return Object.entries(FEATURE_FLAGS).map(([name, flag]) => {
    const head = `  --${name}${flag.value ? ` ${flag.value}` : ""}`;
    const [first, ...rest] = flag.help.split("\n");
    return [
      `${head.padEnd(27)}${first}`,
      ...rest.map((line) => `${" ".repeat(27)}${line}`),
    ].join("\n");
  }).join("\n");
}

/** A `--user-key` path, checked by the store's own rule for `userKey`. */
function userKeyOf(value: string): readonly string[] {
  const { userKey } = parseOptions({ userKey: value }, () => {});
  return userKey!;
}

/** The text of `--help`. */
export const HELP = `Usage: ${NAME} <command> [options]

Commands:
  prune          delete expired sessions now, in short batches; when another
                 process is pruning the same table, skip and report 0
  create-table   create the schema (with --schema-name), table and index when
                 missing, as createTableIfMissing does, with the parts the
                 flags below ask for
  migrate        bring an existing table up to what the flags below ask for,
                 while apps (and connect-pg-simple) use it; idempotent
  stats          count the table's sessions: total, live and expired

Table parts (create-table, migrate):
${featureHelp()}
  --dry-run                print the SQL, change nothing

Options:
  --database-url URL       the server (default: DATABASE_URL, else the PG*
                           variables PGHOST, PGPORT, PGUSER, PGPASSWORD,
                           PGDATABASE); prefer the environment for secrets
  --schema-name NAME       the table's schema (default: the search_path)
  --table-name NAME        the table (default: session)
  --connect-timeout SECS   give up connecting after this long (default: the
                           URL's connect_timeout, else PGCONNECT_TIMEOUT,
                           else ${DEFAULT_CONNECT_TIMEOUT_SECONDS})
  --timeout SECS           give up on a statement, or on waiting for a lock
                           on the table, after this long (default ${DEFAULT_TIMEOUT_SECONDS}); a
                           prune batch cut short changes nothing; migrate's
                           steps run to the end once they hold their lock
  --json                   print the result as one line of JSON
  -h, --help               print this help

Exit status: 0 done, 1 database or connection error, 2 usage error.
`;

/** Where the command writes, and what it reads from the environment. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  env: Record<string, string | undefined>;
}

class UsageError extends Error {}

interface Invocation {
  command: "prune" | "create-table" | "migrate" | "stats" | "help";
  url: string | undefined;
  schemaName: string | undefined;
  tableName: string | undefined;
  /** Seconds, or `undefined` to take the URL's or the environment's. */
  connectTimeout: number | undefined;
  /** Seconds a statement, or a wait for a lock, may take. */
  timeout: number;
  json: boolean;
  /** The table parts asked for (create-table, migrate). */
  features: TableFeatures;
  dryRun: boolean;
}

const COMMANDS = new Set(["prune", "create-table", "migrate", "stats"]);
const SHAPING = new Set(["create-table", "migrate"]);

function parseInvocation(args: string[], env: CliIo["env"]): Invocation {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: "boolean", short: "h" },
        json: { type: "boolean" },
        "database-url": { type: "string" },
        "schema-name": { type: "string" },
        "table-name": { type: "string" },
        "connect-timeout": { type: "string" },
        timeout: { type: "string" },
        "dry-run": { type: "boolean" },
        ...Object.fromEntries(
          Object.entries(FEATURE_FLAGS).map(([name, { type }]) => [
            name,
            { type },
          ]),
        ),
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  const flags = values as Record<string, string | boolean | undefined>;
  const base = {
    url: values["database-url"] ?? (env.DATABASE_URL || undefined),
    schemaName: values["schema-name"] as string | undefined,
    tableName: values["table-name"] as string | undefined,
    json: (values.json ?? false) as boolean,
    features: {} as TableFeatures,
    dryRun: (values["dry-run"] ?? false) as boolean,
  };
  if (values.help || positionals[0] === "help") {
    return { command: "help", connectTimeout: 0, timeout: 0, ...base };
  }
  if (positionals.length === 0) throw new UsageError("no command given");
  const [command, ...extra] = positionals;
  if (!COMMANDS.has(command)) {
    throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
  if (extra.length) {
    throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  }
  const shaping = [
    "dry-run",
    ...Object.keys(FEATURE_FLAGS),
  ].filter((name) => flags[name] !== undefined);
  if (shaping.length && !SHAPING.has(command)) {
    throw new UsageError(
      `--${shaping[0]} is for create-table and migrate, not ${command}`,
    );
  }
  for (const name of Object.keys(FEATURE_FLAGS) as FeatureFlag[]) {
    const value = flags[name];
    if (value !== undefined) {
      FEATURE_FLAGS[name].set(base.features, String(value));
    }
  }
  if (command === "migrate" && !Object.keys(base.features).length) {
    throw new UsageError(
      `migrate needs at least one of ${
        Object.keys(FEATURE_FLAGS).map((name) => `--${name}`).join(", ")
      }`,
    );
  }
  const connectTimeout = seconds(
    values["connect-timeout"],
    "--connect-timeout",
  );
  return {
    command: command as Invocation["command"],
    connectTimeout,
    timeout: seconds(values.timeout, "--timeout") ?? DEFAULT_TIMEOUT_SECONDS,
    ...base,
  };
}

/** A flag's positive number of seconds, or `undefined` when not given. */
function seconds(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!(Number.isFinite(value) && value > 0)) {
    throw new UsageError(
      `${flag} must be a positive number of seconds, got ${
        JSON.stringify(text)
      }`,
    );
  }
  return value;
}

/** What went wrong, in words a person running the command can act on. */
function describeFailure(
  error: unknown,
  table: string,
  timeout: number,
): string {
  const { code, message } = error as { code?: string; message?: string };
  const text = message ?? String(error);
  if (code === "42P01") {
    return `table ${table} does not exist (run \`${NAME} create-table\` first): ${text}`;
  }
  if (code === "55P03") {
    return `table ${table} is locked by another transaction: gave up after ${timeout} s (--timeout); nothing was changed`;
  }
  if (code === "CALL_TIMEOUT") {
    return `no answer from the database within ${timeout} s (--timeout); nothing more was changed`;
  }
  if (
    code &&
    /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|CONNECT_TIMEOUT|ECONNRESET)$/
      .test(code)
  ) {
    return `cannot connect to the database: ${text}`;
  }
  return code ? `${text} (${code})` : text;
}

async function run(
  invocation: Invocation,
  sql: PostgresSql,
  names: TableNames,
  io: CliIo,
): Promise<void> {
  const { schema, table: name, qualified: table } = names;
  const print = (result: Record<string, unknown>, words: string) =>
    io.out(
      invocation.json
        ? JSON.stringify({ schema: schema ?? null, table: name, ...result })
        : words,
    );
  const queries = createQueries({ sql }, names);
  switch (invocation.command) {
    case "prune": {
      const deleted = await pruneInBatches(
        boundedBatch(queries, invocation.timeout * 1000),
        nowSeconds(),
      );
      print({ deleted }, `deleted ${deleted} expired sessions from ${table}`);
      break;
    }
    case "create-table": {
      const shape = await readShape(sql, names);
      if (shape.exists) {
        const { features } = invocation;
        const checked = features.userKey
          ? await checkUserIndex(sql, names, features.userKey, shape)
          : shape;
        const missing = [
          ...new Set(
            migrationSteps(names, features, checked).map((step) => step.flag),
          ),
        ];
        print(
          { created: false, missing },
          `table ${table} already exists${
            missing.length
              ? `; it lacks what ${missing.join(" ")} ${
                missing.length > 1 ? "add" : "adds"
              }: run \`${NAME} migrate\` with ${
                missing.length > 1 ? "them" : "it"
              }`
              : ""
          }`,
        );
        break;
      }
      if (invocation.dryRun) {
        const statements = tableDefinition(names, invocation.features);
        if (names.quotedSchema) {
          statements.unshift(
            `CREATE SCHEMA IF NOT EXISTS ${names.quotedSchema}`,
          );
        }
        print(
          { created: false, dryRun: true, statements },
          statements.map((statement) => `${statement};`).join("\n"),
        );
        break;
      }
      await createTable(sql, names, invocation.features);
      print({ created: true }, `created table ${table}`);
      break;
    }
    case "migrate": {
      const { features } = invocation;
      const shape = await readShape(sql, names);
      if (!shape.exists) {
        throw Object.assign(new Error(`relation ${table} does not exist`), {
          code: "42P01",
        });
      }
      if (invocation.dryRun) {
        const checked = features.userKey
          ? await checkUserIndex(sql, names, features.userKey, shape)
          : shape;
        const steps = migrationSteps(names, features, checked);
        print(
          { dryRun: true, steps },
          steps.length
            ? steps.map(stepText).join("\n\n")
            : `-- ${table} has everything asked for`,
        );
        break;
      }
      const done = await migrateTable(
        sql,
        names,
        features,
        performance.now() + invocation.timeout * 1000,
        (step) => {
          if (!invocation.json) io.out(`${step.what} (lock: ${step.lock}) ...`);
        },
      );
      print(
        { steps: done },
        done.length
          ? done.map((step) => `${step.flag}: done in ${step.seconds} s`)
            .join("\n")
          : `${table} has everything asked for: nothing to do`,
      );
      break;
    }
    case "stats": {
      const { total, live } = await queries.stats(nowSeconds());
      const expired = total - live;
      print(
        { total, live, expired },
        `${table}: ${total} sessions, ${live} live, ${expired} expired`,
      );
      break;
    }
  }
}

/** A step as `--dry-run` prints it: what, which lock, then its SQL. */
function stepText(step: MigrationStep): string {
  const statements = step.statements.map((statement) => `${statement};`);
  return [
    `-- ${step.flag}: ${step.what}`,
    `-- lock: ${step.lock}`,
    ...(step.transaction ? ["BEGIN;", ...statements, "COMMIT;"] : statements),
  ].join("\n");
}

/**
 * One prune batch at a time, each limited like a store call: it waits at
 * most `limitMs` for a lock on the table, and past that it never applies.
 */
function boundedBatch(
  queries: Queries,
  limitMs: number,
): (now: number, limit: number) => Promise<number | null> {
  const calls = createCalls(limitMs, isRefusedWrite);
  const clock = createServerClock(() => queries.clock());
  return (now, limit) =>
    calls.run("prune", async (call) => {
      const cutoff = await clock.toServerSeconds(call.writeBy);
      return queries.pruneBatch(
        now,
        limit,
        cutoff,
        call.writeBy - performance.now(),
      );
    });
}

/**
 * Runs the command with `args` (without the program name) and resolves to
 * its exit status. Usage and database errors become a message and a status;
 * it never calls `process.exit`.
 *
 * @example
 * ```ts ignore
 * import { main } from "./cli.ts";
 * const status = await main(["stats", "--json", "--schema-name", "app"]);
 * ```
 */
export async function main(
  args: string[],
  io: CliIo = {
    out: (line) => console.log(line),
    err: (line) => console.error(line),
    env: process.env,
  },
): Promise<number> {
  let invocation: Invocation;
  let table: string;
  let names: TableNames;
  try {
    invocation = parseInvocation(args, io.env);
    if (invocation.command === "help") {
      io.out(HELP);
      return 0;
    }
    ({ names } = parseOptions(
      { schemaName: invocation.schemaName, tableName: invocation.tableName },
      (message) => io.err(`${NAME}: ${message}`),
    ));
    table = names.qualified;
  } catch (error) {
    if (!(error instanceof UsageError || error instanceof TypeError)) {
      throw error;
    }
    const message = error.message.replace(`${NAME}: `, "")
      .replace("option `schemaName`", "--schema-name")
      .replace("option `tableName`", "--table-name")
      .replace("option `userKey`", "--user-key");
    io.err(`${NAME}: ${message}`);
    io.err(`Run \`${NAME} --help\` for usage.`);
    return 2;
  }

  const options = {
    // migrate holds the table's creation lock on one connection while it
    // builds the index on another.
    max: invocation.command === "migrate" ? 2 : 1,
    onnotice: () => {},
    ...(invocation.connectTimeout === undefined
      ? unlessSet(
        "connect_timeout",
        invocation.url,
        DEFAULT_CONNECT_TIMEOUT_SECONDS,
        io.env,
      )
      : { connect_timeout: invocation.connectTimeout }),
    ...(io.env.PGAPPNAME === undefined &&
        !/[?&]application_name=/.test(invocation.url ?? "")
      ? { connection: { application_name: `${NAME} ${invocation.command}` } }
      : {}),
  };
  let sql: PostgresSql | undefined;
  try {
    sql = invocation.url
      ? postgres(invocation.url, options)
      : postgres(options);
    await run(invocation, sql, names, io);
    return 0;
  } catch (error) {
    io.err(`${NAME}: ${describeFailure(error, table, invocation.timeout)}`);
    return 1;
  } finally {
    await sql?.end({ timeout: 1 }).catch(() => {});
  }
}

/** Whether this module is the program being run (Deno, or Node via `bin`). */
function isEntryPoint(): boolean {
  const meta = import.meta as ImportMeta & { main?: boolean };
  if (typeof meta.main === "boolean") return meta.main;
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then((status) => process.exitCode = status);
}
