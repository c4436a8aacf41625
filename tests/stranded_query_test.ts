/**
 * A call made in the instant a connection is lost, between its socket's
 * `error` and `close` events: postgres.js 3.4.9 hands the statement to the
 * dying connection and, when the app's next call reconnects it, answers it
 * with an empty result as though it had run. The store must neither
 * acknowledge a write that never ran nor report a live session as missing:
 * it tries such a call again, so the app sees it succeed for real. (With no
 * next call, the stranded one waits for its `callTimeout`.)
 *
 * @module
 */
import assert from "node:assert/strict";
import { connect as connectSocket, type Socket } from "node:net";
import postgres from "postgres";
import {
  DATABASE_URL,
  type PostgresStore,
  sessionData,
  storeTest,
} from "./_helpers.ts";

/**
 * A postgres.js `sql` of `max` connections whose first socket the test can
 * reset; it runs `inTheGap` the moment that socket reports the error, and
 * `closed` resolves once its close event has come too.
 */
function resettable(inTheGap: () => void, max = 1) {
  const url = new URL(DATABASE_URL);
  let current: Socket | undefined;
  let markClosed = () => {};
  const closed = new Promise<void>((resolve) => markClosed = resolve);
  // postgres.js's `socket` option (a function that returns a connected
  // socket) is missing from its type declarations, hence not a literal.
  const options = {
    max,
    onnotice: () => {},
    connect_timeout: 5,
    backoff: () => 0.05,
    socket: () =>
      new Promise<Socket>((resolve, reject) => {
        const socket = connectSocket(
          Number(url.port || 5432),
          url.hostname,
        );
        socket.once("error", reject);
        socket.once("connect", () => {
          socket.removeListener("error", reject);
          if (current === undefined) {
            current = socket;
            socket.once("error", inTheGap);
            socket.once("close", markClosed);
          }
          resolve(socket);
        });
      }),
  };
  const sql = postgres(DATABASE_URL, options);
  return {
    sql,
    closed,
    reset(): void {
      current!.destroy(
        Object.assign(new Error("connection reset (test)"), {
          code: "ECONNRESET",
        }),
      );
    },
  };
}

/** How the tests reach the socket, postgres.js's `socket` option, does not work under Bun. */
const UNDER_BUN = "Bun" in globalThis &&
  "postgres.js's socket option (how the test reaches the socket) fails under Bun";

storeTest(
  "a set made as the connection is lost is stored before it is acknowledged",
  async ({ store, row }) => {
    let s: PostgresStore | undefined;
    let gap: Promise<void> | undefined;
    const { sql, reset, closed } = resettable(() => {
      gap ??= s!.set("gap", sessionData({ made: "in the gap" }));
    });
    try {
      s = store({ postgres: sql });
      await s.set("before", sessionData());
      reset();
      await closed;
      assert.ok(gap, "a set was made between the error and the close");
      await s.get("before"); // the app's next call: it reconnects
      await gap;
      assert.ok(await row("gap"), "the acknowledged set is in the table");
      assert.equal(
        (await s.get("gap") as unknown as { made: string }).made,
        "in the gap",
      );
    } finally {
      await sql.end({ timeout: 1 });
    }
  },
  { skip: UNDER_BUN },
);

storeTest(
  "a get made as the connection is lost reads the session, not nothing",
  async ({ store }) => {
    let s: PostgresStore | undefined;
    let gap: Promise<unknown> | undefined;
    const { sql, reset, closed } = resettable(() => {
      gap ??= s!.get("live");
    });
    try {
      s = store({ postgres: sql });
      await s.set("live", sessionData({ user: "ada" }));
      reset();
      await closed;
      assert.ok(gap, "a get was made between the error and the close");
      await s.set("next", sessionData()); // the app's next call: it reconnects
      const read = await gap as { user: string } | null;
      assert.equal(read?.user, "ada", "a live session never reads as missing");
    } finally {
      await sql.end({ timeout: 1 });
    }
  },
  { skip: UNDER_BUN },
);

storeTest(
  "two calls made as a pooled connection is lost are answered, not left to time out",
  async ({ store, row }) => {
    let s: PostgresStore | undefined;
    let gap: Promise<unknown>[] = [];
    const { sql, reset, closed } = resettable(() => {
      gap = [
        s!.set("gap", sessionData({ made: "in the gap" })),
        s!.get("live"),
      ];
    }, 2);
    try {
      s = store({ postgres: sql, callTimeout: 10 });
      await s.set("live", sessionData({ user: "ada" }));
      // Both connections open, the reset one among them.
      await Promise.all([s.get("live"), s.get("live"), s.get("live")]);
      reset();
      await closed;
      assert.equal(gap.length, 2, "two calls were made in the gap");
      const started = performance.now();
      // The app goes on; its calls are answered, the stranded ones too.
      for (let i = 0; i < 20; i++) await s.get("live");
      const [, read] = await Promise.all(gap);
      const waited = performance.now() - started;
      assert.equal((read as { user: string }).user, "ada");
      assert.ok(await row("gap"), "the acknowledged set is in the table");
      assert.ok(
        waited < 5_000,
        `answered after ${waited} ms, not at callTimeout`,
      );
    } finally {
      await sql.end({ timeout: 1 });
    }
  },
  { skip: UNDER_BUN },
);
