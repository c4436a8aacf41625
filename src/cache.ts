/**
 * The read cache of one session table: sessions as their JSON text and
 * expiry, the least recently used dropped past `size`, and the rules that
 * keep it coherent with every writer of the table. It knows nothing of
 * frameworks or connections: the table asks it before a read and tells it
 * what each statement did; the listener (`cache_listener.ts`) hands it the
 * notifications of the table's trigger and says when it hears them.
 *
 * The rules:
 * - Nothing is served unless the listener hears the table (`serve(true)`);
 *   each change of that state, a TRUNCATE and a `clear()` empty the cache
 *   and void every read or write in flight.
 * - A read or write of a session counts as in flight from just before its
 *   statement is sent until its answer is handled. A notification about that
 *   session arriving meanwhile means the answer may be older than the
 *   table: a read is then not cached, and a write's result is cached only
 *   if every such notification is the write's own (the same transaction id).
 * - A notification drops the entry of its session unless it carries the
 *   transaction id of one of this store's writes that the entry follows (the
 *   store's own write coming back, maybe after a later write of its own).
 * - A miss is never cached: a session created elsewhere is read at once.
 * - An entry is served only while unexpired by the app's clock, as `get`
 *   reads the table (by its expiry and, with `maxLifetime`, the end of its
 *   lifetime), and for at most `maxAge` since it was read or written.
 *
 * @module
 */

/**
 * A cached session: its JSON text as the table holds it, its expiry, and
 * until when it may be served (epoch seconds).
 */
export interface CachedSession {
  /** The session's JSON text. */
  readonly json: string;
  /** Its row's expiry, in seconds since the epoch. */
  readonly expire: number;
  /**
   * Until when `get` would return it: its expiry or, with `maxLifetime`,
   * the end of its lifetime if sooner (a row connect-pg-simple touched may
   * expire later than that).
   */
  readonly until: number;
}

/** A cached session with what the rules need to know of it. */
export interface Entry extends CachedSession {
  /**
   * The transactions of this store's writes that made it, whose
   * notifications may still arrive (the oldest dropped past
   * {@linkcode OWN_WRITES_KEPT}); none when it was read.
   */
  readonly own: readonly string[];
  /** `performance.now()` when its content was last known to be the table's. */
  readonly storedAt: number;
}

/** Changes seen for one session while reads or writes of it are in flight. */
export interface FlightLog {
  /** Reads and writes of the session in flight. */
  users: number;
  /** The transaction id of each change (`null`: a change of unknown origin). */
  changes: (string | null)[];
  /**
   * The entry a notification took out of service while a write was in
   * flight: if the notification turns out to be that write's own, a write
   * that moved only the expiry puts it back.
   */
  held?: Entry;
}

/** A read or write of one session in flight; see {@linkcode SessionCache.begin}. */
export interface Ticket {
  /** The session. */
  readonly sid: string;
  /** Its changes while in flight. */
  readonly log: FlightLog;
  /** How many changes the log held when this began. */
  readonly from: number;
  /** The cache's epoch when this began: a new epoch voids it. */
  readonly epoch: number;
}

/** What a write did to its session, for the cache to follow. */
export type WriteChange =
  /**
   * Wrote the whole session, expiring at `expire` (as written: with
   * `maxLifetime`, never past the end of its lifetime).
   */
  | { json: string; expire: number }
  /** Moved its expiry only (as written). */
  | { json?: undefined; expire: number }
  /** Deleted it. */
  | null;

/** The cache's limits, validated (see `options.ts`). */
export interface CacheLimits {
  /** Sessions kept at most. */
  size: number;
  /** Milliseconds an entry may be served after it was read or written. */
  maxAgeMs: number;
}

/** The read cache of one table; see the module doc for its rules. */
export interface SessionCache {
  /** The session, if it may be served now at `now` (epoch seconds). */
  lookup(sid: string, now: number): CachedSession | undefined;
  /**
   * Marks a read or write of `sid` as in flight, just before its statement
   * is sent; `undefined` while the cache is not serving.
   */
  begin(sid: string): Ticket | undefined;
  /**
   * A read found this row, to be served until `until` (its expiry unless a
   * lifetime ends sooner): cached unless something changed meanwhile.
   */
  read(
    ticket: Ticket | undefined,
    json: string,
    expire: number,
    until?: number,
  ): void;
  /**
   * A write applied in `transaction` (`null`: it changed nothing) with this
   * effect on its session.
   */
  wrote(
    ticket: Ticket | undefined,
    transaction: string | null,
    change: WriteChange,
  ): void;
  /** A read or write that failed: its session's entry is dropped. */
  failed(ticket: Ticket | undefined, sid: string): void;
  /** A read that returned nothing to cache. */
  release(ticket: Ticket | undefined): void;
  /** Drops one session at once (this store is deleting it). */
  drop(sid: string): void;
  /**
   * This store deleted these sessions in `transaction`: each is dropped,
   * and a read or write of it in flight is treated as if the trigger's
   * notification had arrived (its answer is not cached).
   */
  deleted(transaction: string | null, sids: readonly string[]): void;
  /** Drops every session and voids everything in flight. */
  dropAll(): void;
  /** A notification from the table's trigger. */
  notified(payload: string): void;
  /** Starts or stops serving; either way the cache starts over empty. */
  serve(on: boolean): void;
  /** The number of sessions held. */
  readonly size: number;
}

/** How many of its own writes' transaction ids an entry keeps. */
const OWN_WRITES_KEPT = 8;

const NONE: readonly string[] = [];

/** Whether `payload` starts with a transaction id and a colon. */
const ROW_PAYLOAD = /^\d+:/;

/** Makes an empty cache that does not serve until told to. */
export function createSessionCache(limits: CacheLimits): SessionCache {
  const { size, maxAgeMs } = limits;
  // A Map keeps insertion order: re-inserting on use keeps the least
  // recently used first.
  const entries = new Map<string, Entry>();
  const flights = new Map<string, FlightLog>();
  let epoch = 0;
  let serving = false;

  const store = (sid: string, entry: Entry) => {
    entries.delete(sid);
    entries.set(sid, entry);
    if (entries.size > size) entries.delete(entries.keys().next().value!);
  };

  const end = (ticket: Ticket) => {
    if (--ticket.log.users === 0) flights.delete(ticket.sid);
  };

  /** Whether nothing but `own` changed the ticket's session since it began. */
  const quiet = (ticket: Ticket, own: string | null) => {
    if (ticket.epoch !== epoch) return false;
    const { changes } = ticket.log;
    for (let i = ticket.from; i < changes.length; i++) {
      if (own === null || changes[i] !== own) return false;
    }
    return true;
  };

  const dropAll = () => {
    entries.clear();
    epoch++;
  };

  return {
    lookup(sid, now) {
      if (!serving) return undefined;
      const entry = entries.get(sid);
      if (entry === undefined) return undefined;
      if (
        entry.until < now || performance.now() - entry.storedAt > maxAgeMs
      ) {
        entries.delete(sid);
        return undefined;
      }
      store(sid, entry);
      return entry;
    },

    begin(sid) {
      if (!serving) return undefined;
      let log = flights.get(sid);
      if (log === undefined) {
        log = { users: 0, changes: [] };
        flights.set(sid, log);
      }
      log.users++;
      return { sid, log, from: log.changes.length, epoch };
    },

    read(ticket, json, expire, until = expire) {
      if (ticket === undefined) return;
      if (quiet(ticket, null)) {
        store(ticket.sid, {
          json,
          expire,
          until,
          own: NONE,
          storedAt: performance.now(),
        });
      }
      end(ticket);
    },

    wrote(ticket, transaction, change) {
      if (ticket === undefined) return;
      const { sid } = ticket;
      if (transaction === null) {
        end(ticket);
        return;
      }
      const entry = entries.get(sid) ?? ticket.log.held;
      // Nothing else changed the session meanwhile: the notifications of
      // this store's earlier writes that the entry follows may still come.
      const own = [...(entry?.own ?? NONE), transaction].slice(
        -OWN_WRITES_KEPT,
      );
      if (change === null || !quiet(ticket, transaction)) {
        entries.delete(sid);
      } else if (change.json !== undefined) {
        store(sid, {
          json: change.json,
          expire: change.expire,
          until: change.expire,
          own,
          storedAt: performance.now(),
        });
      } else if (entry !== undefined) {
        // Its content is still the table's: only the expiry moved. The age
        // stays that of the content, so maxAge still bounds it.
        store(sid, {
          json: entry.json,
          expire: change.expire,
          until: change.expire,
          own,
          storedAt: entry.storedAt,
        });
      }
      ticket.log.changes.push(transaction);
      end(ticket);
    },

    failed(ticket, sid) {
      entries.delete(sid);
      if (ticket === undefined) return;
      ticket.log.changes.push(null);
      end(ticket);
    },

    release(ticket) {
      if (ticket !== undefined) end(ticket);
    },

    drop(sid) {
      entries.delete(sid);
    },

    deleted(transaction, sids) {
      for (const sid of sids) {
        entries.delete(sid);
        flights.get(sid)?.changes.push(transaction);
      }
    },

    dropAll,

    notified(payload) {
      if (payload === "") {
        dropAll();
        return;
      }
      if (!ROW_PAYLOAD.test(payload)) return;
      const colon = payload.indexOf(":");
      const transaction = payload.slice(0, colon);
      const sid = payload.slice(colon + 1);
      const entry = entries.get(sid);
      // One of the writes the entry follows: the entry is newer than it, and
      // every read or write in flight already heard of it from the write.
      if (entry !== undefined && entry.own.includes(transaction)) return;
      entries.delete(sid);
      const log = flights.get(sid);
      if (log === undefined) return;
      log.changes.push(transaction);
      if (entry !== undefined) log.held = entry;
    },

    serve(on) {
      serving = on;
      dropAll();
    },

    get size() {
      return entries.size;
    },
  };
}
