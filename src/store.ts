/**
 * The express-session Store: each method turns express-session's arguments
 * into one call on the session table (`session_table.ts`) and settles it
 * through a callback or a promise (`settle.ts`). The expiry rule of
 * connect-pg-simple lives in `expiry.ts`.
 *
 * @module
 */
import type { SessionData, Store } from "express-session";
import type {
  Callback,
  DestroyOfOptions,
  PostgresStore as PostgresStoreInterface,
  PostgresStoreClass,
  PostgresStoreOptions,
  SessionOwner,
  StoredSession,
} from "./types.ts";
import { parseOptions } from "./options.ts";
import { expireSeconds } from "./expiry.ts";
import { openSessionTable, type SessionTable } from "./session_table.ts";
import { settle } from "./settle.ts";

/**
 * Makes the store class on top of express-session's `Store`.
 *
 * @param Base express-session's `Store` class.
 */
export function createStoreClass(Base: typeof Store): PostgresStoreClass {
  class PostgresStore extends Base implements PostgresStoreInterface {
    /** Lifetime in seconds of sessions whose cookie has no expiry. */
    ttl: number | undefined;
    readonly #table: SessionTable<SessionData>;

    constructor(options?: PostgresStoreOptions) {
      const config = parseOptions(options, (message) => console.warn(message));
      super();
      this.ttl = config.ttl;
      this.#table = openSessionTable(config);
    }

    override get(sid: string): Promise<SessionData | null>;
    override get(
      sid: string,
      callback: Callback<SessionData | null>,
    ): Promise<void>;
    override get(
      sid: string,
      callback?: Callback<SessionData | null>,
    ): Promise<SessionData | null> | Promise<void> {
      return settle(this.#table.get(sid), callback);
    }

    override set(sid: string, session: SessionData): Promise<void>;
    override set(
      sid: string,
      session: SessionData,
      callback: Callback<void>,
    ): Promise<void>;
    override set(
      sid: string,
      session: SessionData,
      callback?: Callback<void>,
    ): Promise<void> {
      const expire = () => expireSeconds(session, this.ttl, Date.now());
      return settle(this.#table.set(sid, session, expire), callback);
    }

    override destroy(sid: string, callback?: Callback<void>): Promise<void> {
      return settle(this.#table.destroy(sid), callback);
    }

    override touch(
      sid: string,
      session: SessionData,
      callback?: Callback<void>,
    ): Promise<void> {
      const expire = () => expireSeconds(session, this.ttl, Date.now());
      return settle(this.#table.touch(sid, expire), callback);
    }

    override all(): Promise<StoredSession[]>;
    override all(callback: Callback<StoredSession[]>): Promise<void>;
    override all(
      callback?: Callback<StoredSession[]>,
    ): Promise<StoredSession[]> | Promise<void> {
      return settle(this.#table.all(), callback);
    }

    ids(): Promise<string[]>;
    ids(callback: Callback<string[]>): Promise<void>;
    ids(callback?: Callback<string[]>): Promise<string[]> | Promise<void> {
      return settle(this.#table.ids(), callback);
    }

    override length(): Promise<number>;
    override length(callback: Callback<number>): Promise<void>;
    override length(
      callback?: Callback<number>,
    ): Promise<number> | Promise<void> {
      return settle(this.#table.length(), callback);
    }

    override clear(callback?: Callback<void>): Promise<void> {
      return settle(this.#table.clear(), callback);
    }

    sessionsOf(user: SessionOwner): Promise<StoredSession[]>;
    sessionsOf(
      user: SessionOwner,
      callback: Callback<StoredSession[]>,
    ): Promise<void>;
    sessionsOf(
      user: SessionOwner,
      callback?: Callback<StoredSession[]>,
    ): Promise<StoredSession[]> | Promise<void> {
      return settle(this.#table.sessionsOf(user), callback);
    }

    destroyOf(user: SessionOwner, options?: DestroyOfOptions): Promise<number>;
    destroyOf(user: SessionOwner, callback: Callback<number>): Promise<void>;
    destroyOf(
      user: SessionOwner,
      options: DestroyOfOptions | undefined,
      callback: Callback<number>,
    ): Promise<void>;
    destroyOf(
      user: SessionOwner,
      options?: DestroyOfOptions | Callback<number>,
      callback?: Callback<number>,
    ): Promise<number> | Promise<void> {
      if (typeof options === "function") [options, callback] = [{}, options];
      return settle(this.#table.destroyOf(user, options), callback);
    }

    pruneSessions(): Promise<number>;
    pruneSessions(callback: Callback<number>): Promise<void>;
    pruneSessions(
      callback?: Callback<number>,
    ): Promise<number> | Promise<void> {
      return settle(this.#table.prune(), callback);
    }

    close(): Promise<void>;
    close(callback: Callback<void>): Promise<void>;
    close(callback?: Callback<void>): Promise<void> {
      return settle(this.#table.close(), callback);
    }
  }
  return PostgresStore;
}
