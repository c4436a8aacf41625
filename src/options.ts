/**
 * Raw options in, a frozen and validated configuration out. This is the only
 * place that throws `TypeError` for a bad option.
 *
 * @module
 */
import type {
  ErrorLog,
  PostgresSql,
  PostgresStoreOptions,
  PruneDelayRandomizer,
} from "./types.ts";
import {
  MAX_IDENTIFIER_BYTES,
  resolveTableNames,
  type TableNames,
} from "./names.ts";

/** connect-pg-simple's default lifetime of a session without cookie expiry. */
export const DEFAULT_TTL_SECONDS = 86400;
/** The default interval between automatic prunes (the original README's 60 s). */
export const DEFAULT_PRUNE_INTERVAL_SECONDS = 60;
/** How long a call may wait for PostgreSQL by default. */
export const DEFAULT_CALL_TIMEOUT_SECONDS = 10;
/** The longest delay a timer accepts (Node turns longer ones into 1 ms). */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/** A store's settings after validation. */
export interface StoreConfig {
  /** The `sql` given by the user, or `undefined` when the store opens its own. */
  postgres: PostgresSql | undefined;
  /** The `ttl` option as given (seconds), for the store's public `ttl`. */
  ttl: number | undefined;
  createTableIfMissing: boolean;
  disableTouch: boolean;
  names: TableNames;
  /** Milliseconds between prunes, or `false` for no automatic pruning. */
  pruneIntervalMs: number | false;
  /** Turns the interval into the next delay. */
  pruneDelay: PruneDelayRandomizer;
  errorLog: ErrorLog;
  touchAfterSeconds: number;
  /** Milliseconds a call may wait for PostgreSQL, or `false` for no limit. */
  callTimeoutMs: number | false;
}

const PG_ONLY_OPTIONS = ["pool", "pgPromise", "conString", "conObject"];
const KNOWN_OPTIONS = new Set<string>([
  "postgres",
  "ttl",
  "createTableIfMissing",
  "disableTouch",
  "schemaName",
  "tableName",
  "pruneSessionInterval",
  "pruneSessionRandomizedInterval",
  "errorLog",
  "touchAfter",
  "callTimeout",
]);

function fail(option: string, accepts: string, value: unknown): never {
  throw new TypeError(
    `connect-postgres-simple: option \`${option}\` must be ${accepts}, got ${
      describe(value)
    }`,
  );
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean") {
    return String(value);
  }
  if (value === null) return "null";
  if (typeof value === "function") return "a function";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : typeof value;
}

function optionalBoolean(
  options: PostgresStoreOptions,
  key: keyof PostgresStoreOptions,
): boolean {
  const value = options[key];
  if (value === undefined) return false;
  if (typeof value !== "boolean") fail(key, "a boolean", value);
  return value;
}

function optionalName(
  options: PostgresStoreOptions,
  key: "schemaName" | "tableName",
): string | undefined {
  const value = options[key];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "" || value.includes("\0")) {
    fail(key, "a non-empty string without NUL characters", value);
  }
  // PostgreSQL would silently cut a longer name, so two names could meet.
  if (new TextEncoder().encode(value).length > MAX_IDENTIFIER_BYTES) {
    fail(
      key,
      `at most ${MAX_IDENTIFIER_BYTES} bytes long (PostgreSQL's limit)`,
      value,
    );
  }
  return value;
}

function optionalSeconds(
  options: PostgresStoreOptions,
  key: "ttl" | "touchAfter" | "pruneSessionInterval" | "callTimeout",
  min: "positive" | "non-negative",
): number | undefined {
  const value = options[key];
  if (value === undefined) return undefined;
  const ok = typeof value === "number" && Number.isFinite(value) &&
    (min === "positive" ? value > 0 : value >= 0);
  if (!ok) fail(key, `a finite ${min} number of seconds`, value);
  return value as number;
}

function isPostgresSql(value: unknown): value is PostgresSql {
  if (typeof value !== "function") return false;
  const sql = value as unknown as Record<string, unknown>;
  return typeof sql.unsafe === "function" && typeof sql.begin === "function" &&
    typeof sql.end === "function";
}

/** Spreads a delay over 50–150 % of itself, as connect-pg-simple does. */
export function randomizedDelay(delayMs: number): number {
  return Math.ceil(delayMs / 2 + delayMs * Math.random());
}

/**
 * Validates raw store options once, at construction.
 *
 * @throws {TypeError} naming the option and what it accepts.
 */
export function parseOptions(
  raw: PostgresStoreOptions | undefined,
  warn: (message: string) => void,
): StoreConfig {
  if (raw === undefined) raw = {};
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new TypeError(
      `connect-postgres-simple: options must be an object, got ${
        describe(raw)
      }`,
    );
  }
  for (const key of Object.keys(raw)) {
    if (PG_ONLY_OPTIONS.includes(key)) {
      throw new TypeError(
        `connect-postgres-simple: option \`${key}\` is for pg (connect-pg-simple); pass a postgres.js sql as \`postgres\` instead`,
      );
    }
    if (!KNOWN_OPTIONS.has(key)) {
      throw new TypeError(
        `connect-postgres-simple: unknown option \`${key}\`; known options: ${
          [...KNOWN_OPTIONS].join(", ")
        }`,
      );
    }
  }
  const options = raw;

  if (options.postgres !== undefined && !isPostgresSql(options.postgres)) {
    fail(
      "postgres",
      "a postgres.js sql instance (from `postgres(...)`)",
      options.postgres,
    );
  }
  if (
    options.errorLog !== undefined && typeof options.errorLog !== "function"
  ) {
    fail("errorLog", "a function", options.errorLog);
  }
  const randomizer = options.pruneSessionRandomizedInterval;
  if (
    randomizer !== undefined && randomizer !== false &&
    typeof randomizer !== "function"
  ) {
    fail("pruneSessionRandomizedInterval", "false or a function", randomizer);
  }
  const interval = options.pruneSessionInterval === false
    ? false
    : optionalSeconds(options, "pruneSessionInterval", "positive") ??
      DEFAULT_PRUNE_INTERVAL_SECONDS;

  const callTimeout = options.callTimeout === false
    ? false
    : optionalSeconds(options, "callTimeout", "positive") ??
      DEFAULT_CALL_TIMEOUT_SECONDS;

  return Object.freeze({
    postgres: options.postgres,
    ttl: optionalSeconds(options, "ttl", "positive"),
    createTableIfMissing: optionalBoolean(options, "createTableIfMissing"),
    disableTouch: optionalBoolean(options, "disableTouch"),
    names: resolveTableNames(
      optionalName(options, "schemaName"),
      optionalName(options, "tableName") ?? "session",
      warn,
    ),
    pruneIntervalMs: interval === false ? false : interval * 1000,
    pruneDelay: randomizer === false
      ? (delayMs: number) => delayMs
      : randomizer ?? randomizedDelay,
    errorLog: options.errorLog ?? console.error.bind(console),
    callTimeoutMs: callTimeout === false
      ? false
      : Math.min(callTimeout * 1000, MAX_TIMER_DELAY_MS),
    touchAfterSeconds: optionalSeconds(options, "touchAfter", "non-negative") ??
      0,
  });
}
