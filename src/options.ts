/**
 * Raw options in, a frozen and validated configuration out. This is the only
 * place that throws `TypeError` for a bad option.
 *
 * @module
 */
import type { CacheOptions } from "./cache_options.ts";
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
import { MAX_TIMER_DELAY_MS } from "./pruner.ts";
import { userKeySegments } from "./user_key.ts";

/** The default interval between automatic prunes (the original README's 60 s). */
export const DEFAULT_PRUNE_INTERVAL_SECONDS = 60;
/** How long a call may wait for PostgreSQL by default. */
export const DEFAULT_CALL_TIMEOUT_SECONDS = 10;

/**
 * The longest `ttl` and `touchAfter`: 100 years. Sane for any session, and
 * far inside PostgreSQL's timestamps (which end in the year 294276), so an
 * expiry computed from it can always be stored.
 */
export const MAX_LIFETIME_SECONDS = 100 * 365.25 * 86400;
/** The shortest prune interval: one prune transaction a second at most. */
export const MIN_PRUNE_INTERVAL_SECONDS = 1;
/** The longest interval or limit a timer can wait, in whole seconds (about 24.8 days). */
export const MAX_TIMER_SECONDS = Math.floor(MAX_TIMER_DELAY_MS / 1000);
/** The shortest `callTimeout`: less leaves no time for a round trip. */
export const MIN_CALL_TIMEOUT_SECONDS = 0.05;

/** The default `cache.size`: sessions kept in memory. */
export const DEFAULT_CACHE_SIZE = 10_000;
/** The largest `cache.size`. */
export const MAX_CACHE_SIZE = 10_000_000;
/**
 * The default `cache.maxAge`, in seconds: how long a session may be served
 * from memory after it was last read or written. A miss costs one read, so
 * an active session costs at most one read a minute; and whatever the
 * listener's checks could miss (it checks every 30 s that it still hears
 * the table), no session is served staler than this.
 */
export const DEFAULT_CACHE_MAX_AGE_SECONDS = 60;

/** The read cache's settings after validation. */
export interface CacheConfig {
  size: number;
  maxAgeMs: number;
  /** The `sql` whose settings the listener copies, when given. */
  listen: PostgresSql | undefined;
}

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
  /** Spreads each prune delay: a function, `false` for none, `undefined` for the default. */
  pruneRandomizer: PruneDelayRandomizer | false | undefined;
  errorLog: ErrorLog;
  touchAfterSeconds: number;
  /** Milliseconds a call may take, or `false` for no limit. */
  callTimeoutMs: number | false;
  /** The path of a session's owner (`userKey`, split on dots), or `undefined`. */
  userKey: readonly string[] | undefined;
  /** Seconds a session may live after it was created (`maxLifetime`), or `undefined`. */
  maxLifetimeSeconds: number | undefined;
  /** The read cache, or `undefined` for none. */
  cache: CacheConfig | undefined;
}

/**
 * Every option the store knows, checked by the compiler against
 * {@linkcode PostgresStoreOptions}: a key missing here or not there fails
 * `deno check`, so the list cannot drift.
 */
const OPTION_NAMES = {
  postgres: true,
  ttl: true,
  createTableIfMissing: true,
  disableTouch: true,
  schemaName: true,
  tableName: true,
  pruneSessionInterval: true,
  pruneSessionRandomizedInterval: true,
  errorLog: true,
  touchAfter: true,
  callTimeout: true,
  userKey: true,
  maxLifetime: true,
  cache: true,
} as const satisfies Record<keyof PostgresStoreOptions, true>;

/** The names of every option, in the order the documentation lists them. */
export const KNOWN_OPTIONS: readonly (keyof PostgresStoreOptions)[] = Object
  .keys(OPTION_NAMES) as (keyof PostgresStoreOptions)[];

const PG_ONLY_OPTIONS = ["pool", "pgPromise", "conString", "conObject"];

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

function optionalBoolean(value: unknown, key: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== "boolean") fail(key, "a boolean", value);
  return value;
}

function optionalUserKey(value: unknown): readonly string[] | undefined {
  if (value === undefined) return undefined;
  const segments = userKeySegments(value);
  if (typeof segments === "string") fail("userKey", segments, value);
  return Object.freeze(segments);
}

function optionalName(value: unknown, key: string): string | undefined {
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

/**
 * A number of seconds within `[min, max]`; `min` itself is excluded when
 * `exclusive` (e.g. "positive").
 */
function optionalSeconds(
  value: unknown,
  key: string,
  range: { min: number; max: number; exclusive?: boolean; words: string },
): number | undefined {
  if (value === undefined) return undefined;
  const { min, max, exclusive = false, words } = range;
  const ok = typeof value === "number" && Number.isFinite(value) &&
    (exclusive ? value > min : value >= min) && value <= max;
  if (!ok) fail(key, words, value);
  return value as number;
}

const LIFETIME = {
  min: 0,
  max: MAX_LIFETIME_SECONDS,
  words:
    `a positive number of seconds, at most ${MAX_LIFETIME_SECONDS} (100 years)`,
};

function isPostgresSql(value: unknown): value is PostgresSql {
  if (typeof value !== "function") return false;
  const sql = value as unknown as Record<string, unknown>;
  return typeof sql.unsafe === "function" && typeof sql.begin === "function" &&
    typeof sql.end === "function";
}

const CACHE_KEYS = ["size", "maxAge", "listen"];

function parseCache(value: unknown): CacheConfig | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) value = {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail("cache", "a boolean or an object { size, maxAge, listen }", value);
  }
  for (const key of Object.keys(value)) {
    if (!CACHE_KEYS.includes(key)) {
      fail(
        "cache",
        `an object with the keys ${CACHE_KEYS.join(", ")}, not \`${key}\``,
        value,
      );
    }
  }
  const { size = DEFAULT_CACHE_SIZE, maxAge, listen } = value as CacheOptions;
  if (!Number.isInteger(size) || size < 1 || size > MAX_CACHE_SIZE) {
    fail("cache.size", `an integer from 1 to ${MAX_CACHE_SIZE}`, size);
  }
  if (listen !== undefined && !isPostgresSql(listen)) {
    fail("cache.listen", "a postgres.js sql instance", listen);
  }
  const seconds = optionalSeconds(maxAge, "cache.maxAge", {
    min: 0,
    max: MAX_TIMER_SECONDS,
    exclusive: true,
    words: `a positive number of seconds, at most ${MAX_TIMER_SECONDS}`,
  }) ?? DEFAULT_CACHE_MAX_AGE_SECONDS;
  return { size, maxAgeMs: seconds * 1000, listen };
}

function checkKeys(raw: object): void {
  for (const key of Object.keys(raw)) {
    if (PG_ONLY_OPTIONS.includes(key)) {
      throw new TypeError(
        `connect-postgres-simple: option \`${key}\` is for pg (connect-pg-simple); pass a postgres.js sql as \`postgres\` instead`,
      );
    }
    if (!Object.hasOwn(OPTION_NAMES, key)) {
      throw new TypeError(
        `connect-postgres-simple: unknown option \`${key}\`; known options: ${
          KNOWN_OPTIONS.join(", ")
        }`,
      );
    }
  }
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
  checkKeys(raw);
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
    : optionalSeconds(options.pruneSessionInterval, "pruneSessionInterval", {
      min: MIN_PRUNE_INTERVAL_SECONDS,
      max: MAX_TIMER_SECONDS,
      words:
        `false or a number of seconds from ${MIN_PRUNE_INTERVAL_SECONDS} to ${MAX_TIMER_SECONDS} (about 24.8 days)`,
    }) ?? DEFAULT_PRUNE_INTERVAL_SECONDS;
  const callTimeout = options.callTimeout === false
    ? false
    : optionalSeconds(options.callTimeout, "callTimeout", {
      min: MIN_CALL_TIMEOUT_SECONDS,
      max: MAX_TIMER_SECONDS,
      words:
        `false or a number of seconds from ${MIN_CALL_TIMEOUT_SECONDS} to ${MAX_TIMER_SECONDS} (about 24.8 days)`,
    }) ?? DEFAULT_CALL_TIMEOUT_SECONDS;

  return Object.freeze({
    postgres: options.postgres,
    ttl: optionalSeconds(options.ttl, "ttl", { ...LIFETIME, exclusive: true }),
    createTableIfMissing: optionalBoolean(
      options.createTableIfMissing,
      "createTableIfMissing",
    ),
    disableTouch: optionalBoolean(options.disableTouch, "disableTouch"),
    names: resolveTableNames(
      optionalName(options.schemaName, "schemaName"),
      optionalName(options.tableName, "tableName") ?? "session",
      warn,
    ),
    pruneIntervalMs: interval === false ? false : interval * 1000,
    pruneRandomizer: randomizer,
    errorLog: options.errorLog ?? console.error.bind(console),
    callTimeoutMs: callTimeout === false ? false : callTimeout * 1000,
    touchAfterSeconds: optionalSeconds(options.touchAfter, "touchAfter", {
      ...LIFETIME,
      words:
        `a non-negative number of seconds, at most ${MAX_LIFETIME_SECONDS} (100 years)`,
    }) ?? 0,
    userKey: optionalUserKey(options.userKey),
    maxLifetimeSeconds: optionalSeconds(options.maxLifetime, "maxLifetime", {
      ...LIFETIME,
      exclusive: true,
    }),
    cache: parseCache(options.cache),
  });
}
