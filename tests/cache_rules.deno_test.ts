/**
 * The read cache's invalidation rules, event by event, in the orders that
 * the network can deliver them: a read or write and the notifications of
 * the table's trigger race on two connections. Each order is hard to force
 * against a server (`cache_test.ts` forces the main one), so the rules are
 * checked here on the cache itself (under Deno only: the compiled suite
 * reaches the store only through the package's entry points).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createSessionCache, type SessionCache } from "../src/cache.ts";

const NOW = 1_000_000;
const LATER = NOW + 3600;

function serving(size = 100): SessionCache {
  const cache = createSessionCache({ size, maxAgeMs: 60_000 });
  cache.serve(true);
  return cache;
}

function cachedJson(cache: SessionCache, sid: string): string | undefined {
  return cache.lookup(sid, NOW)?.json;
}

test("a read is cached; a notification from another transaction drops it", () => {
  const cache = serving();
  cache.read(cache.begin("s"), '{"v":1}', LATER);
  assert.equal(cachedJson(cache, "s"), '{"v":1}');
  cache.notified("42:s");
  assert.equal(cachedJson(cache, "s"), undefined);
});

test("a notification while a read is in flight: the read is not cached", () => {
  const cache = serving();
  const ticket = cache.begin("s");
  cache.notified("42:s");
  cache.read(ticket, '{"v":1}', LATER);
  assert.equal(cachedJson(cache, "s"), undefined);
  // The next read, begun after the notification, is cached.
  cache.read(cache.begin("s"), '{"v":2}', LATER);
  assert.equal(cachedJson(cache, "s"), '{"v":2}');
});

test("a notification for another session does not void a read", () => {
  const cache = serving();
  const ticket = cache.begin("s");
  cache.notified("42:other");
  cache.read(ticket, '{"v":1}', LATER);
  assert.equal(cachedJson(cache, "s"), '{"v":1}');
});

test("a store's own write is kept when its notification comes back, before or after the answer", () => {
  const cache = serving();
  cache.wrote(cache.begin("s"), "7", { json: '{"v":1}', expire: LATER });
  cache.notified("7:s");
  assert.equal(cachedJson(cache, "s"), '{"v":1}');

  const early = cache.begin("t");
  cache.notified("8:t");
  cache.wrote(early, "8", { json: '{"v":2}', expire: LATER });
  assert.equal(cachedJson(cache, "t"), '{"v":2}');
});

test("the late notifications of a store's earlier writes keep the entry its later write made", () => {
  const cache = serving();
  cache.wrote(cache.begin("s"), "7", { json: '{"v":1}', expire: LATER });
  const touch = cache.begin("s");
  cache.notified("7:s"); // the set's own notification, while the touch is in flight
  cache.wrote(touch, "8", { expire: LATER + 60 });
  cache.wrote(cache.begin("s"), "9", { json: '{"v":2}', expire: LATER });
  cache.notified("8:s");
  cache.notified("9:s");
  assert.equal(cachedJson(cache, "s"), '{"v":2}');
  cache.notified("10:s");
  assert.equal(cachedJson(cache, "s"), undefined, "another's write drops it");
});

test("a write's own notification arriving before its answer does not lose the entry", () => {
  const cache = serving();
  cache.wrote(cache.begin("s"), "7", { json: '{"v":1}', expire: LATER });
  const touch = cache.begin("s");
  cache.notified("8:s"); // the touch's own, but the store cannot know yet
  assert.equal(cachedJson(cache, "s"), undefined, "not served meanwhile");
  cache.wrote(touch, "8", { expire: LATER + 60 });
  assert.equal(cache.lookup("s", NOW)?.expire, LATER + 60);
  assert.equal(cachedJson(cache, "s"), '{"v":1}');
});

test("a write that raced another writer's is not cached, whichever committed last", () => {
  const cache = serving();
  cache.read(cache.begin("s"), '{"v":0}', LATER);
  const ticket = cache.begin("s");
  cache.notified("9:s"); // another transaction, committed while ours was in flight
  cache.wrote(ticket, "10", { json: '{"v":1}', expire: LATER });
  assert.equal(cachedJson(cache, "s"), undefined);
});

test("a read in flight while this store writes the same session is not cached", () => {
  const cache = serving();
  const read = cache.begin("s");
  cache.wrote(cache.begin("s"), "11", { json: '{"v":2}', expire: LATER });
  cache.read(read, '{"v":1}', LATER); // older than the write
  assert.equal(cachedJson(cache, "s"), '{"v":2}');
});

test("a touch moves the cached expiry and keeps the content", () => {
  const cache = serving();
  cache.read(cache.begin("s"), '{"v":1}', NOW + 10);
  cache.wrote(cache.begin("s"), "12", { expire: LATER });
  assert.equal(cache.lookup("s", NOW + 20)?.json, '{"v":1}');
  assert.equal(cache.lookup("s", NOW + 20)?.expire, LATER);
  cache.notified("12:s");
  assert.equal(cachedJson(cache, "s"), '{"v":1}', "its own notification");
});

test("a write that changed nothing, or failed, or a destroy, leaves no stale entry", () => {
  const cache = serving();
  cache.read(cache.begin("s"), '{"v":1}', LATER);
  cache.wrote(cache.begin("s"), null, { expire: LATER + 1 });
  assert.equal(cache.lookup("s", NOW)?.expire, LATER, "nothing changed");
  cache.failed(cache.begin("s"), "s");
  assert.equal(cachedJson(cache, "s"), undefined, "a failed write drops it");
  cache.read(cache.begin("s"), '{"v":1}', LATER);
  cache.wrote(cache.begin("s"), "13", null);
  assert.equal(cachedJson(cache, "s"), undefined, "a destroy drops it");
});

test("TRUNCATE, clear and a listener that goes down or comes back void everything, reads in flight too", () => {
  for (
    const event of [
      (c: SessionCache) => c.notified(""),
      (c: SessionCache) => c.dropAll(),
      (c: SessionCache) => c.serve(true),
    ]
  ) {
    const cache = serving();
    cache.read(cache.begin("a"), "{}", LATER);
    const inFlight = cache.begin("b");
    event(cache);
    cache.read(inFlight, "{}", LATER);
    assert.equal(cache.size, 0);
  }
  const down = serving();
  down.read(down.begin("a"), "{}", LATER);
  down.serve(false);
  assert.equal(down.lookup("a", NOW), undefined);
  assert.equal(down.begin("a"), undefined, "nothing is tracked while down");
});

test("nothing is served past its expiry, by the same rule as the table's get", () => {
  const cache = serving();
  cache.read(cache.begin("s"), "{}", NOW);
  assert.ok(cache.lookup("s", NOW), "expire >= now is served");
  assert.equal(cache.lookup("s", NOW + 1), undefined);
});

test("past size, the least recently used session goes first", () => {
  const cache = serving(2);
  cache.read(cache.begin("a"), "{}", LATER);
  cache.read(cache.begin("b"), "{}", LATER);
  cache.lookup("a", NOW);
  cache.read(cache.begin("c"), "{}", LATER);
  assert.ok(cache.lookup("a", NOW));
  assert.equal(cache.lookup("b", NOW), undefined);
  assert.ok(cache.lookup("c", NOW));
});

test("payloads that are not a session's are ignored", () => {
  const cache = serving();
  cache.read(cache.begin("s"), "{}", LATER);
  cache.notified("probe:1234");
  cache.notified("s");
  assert.ok(cache.lookup("s", NOW));
  cache.notified("5:a:b");
  cache.read(cache.begin("a:b"), "{}", LATER);
  cache.notified("6:a:b");
  assert.equal(cache.lookup("a:b", NOW), undefined, "an id may hold colons");
});

test("sessions this store deleted (destroyOf) are dropped, and a read or write of one in flight is not cached", () => {
  const cache = serving();
  cache.read(cache.begin("a"), '{"v":1}', LATER);
  cache.read(cache.begin("kept"), '{"v":1}', LATER);
  const reading = cache.begin("b");
  const writing = cache.begin("c");
  cache.deleted("9", ["a", "b", "c"]);
  cache.read(reading, '{"v":1}', LATER);
  cache.wrote(writing, "10", { json: '{"v":2}', expire: LATER });
  assert.equal(cachedJson(cache, "a"), undefined);
  assert.equal(cachedJson(cache, "b"), undefined, "the read may predate it");
  assert.equal(cachedJson(cache, "c"), undefined, "the write may predate it");
  assert.equal(cachedJson(cache, "kept"), '{"v":1}');
});

test("a read is served until its lifetime ends, even when its row expires later", () => {
  const cache = serving();
  cache.read(cache.begin("s"), '{"v":1}', LATER, NOW + 10);
  assert.equal(cache.lookup("s", NOW + 10)?.expire, LATER);
  assert.equal(cache.lookup("s", NOW + 11), undefined);
});
