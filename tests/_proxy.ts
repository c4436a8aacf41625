/**
 * A TCP proxy on loopback in front of the test server that cuts idle
 * connections the way cloud load balancers and NAT gateways do: silently.
 * After `idleMs` without traffic it closes the server side and forgets the
 * client's, without telling the client; the client learns of it only when
 * it next writes, and its bytes go nowhere (the proxy then resets the
 * socket).
 *
 * @module
 */
import { connect, createServer, type Socket } from "node:net";

/** A running proxy; see {@linkcode startIdleCutProxy}. */
export interface IdleCutProxy {
  /** The port clients connect to, on 127.0.0.1. */
  port: number;
  /** How many connections it has cut so far. */
  readonly cuts: number;
  /** How many bytes clients wrote into connections already cut. */
  readonly lostBytes: number;
  /** Stops listening and drops every connection. */
  close(): Promise<void>;
}

/** Starts a proxy to `host:port` that cuts connections idle for `idleMs`. */
export async function startIdleCutProxy(
  target: { host: string; port: number },
  idleMs: number,
): Promise<IdleCutProxy> {
  let cuts = 0;
  let lostBytes = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    let cut = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const idle = () => {
      if (timer !== undefined) clearTimeout(timer);
      timer = setTimeout(() => {
        cut = true;
        cuts++;
        upstream.destroy();
      }, idleMs);
    };
    idle();
    client.on("data", (chunk) => {
      if (cut) {
        lostBytes += chunk.length;
        // A reset where the runtime has one (Node), else a close.
        if (typeof client.resetAndDestroy === "function") {
          client.resetAndDestroy();
        } else client.destroy();
        return;
      }
      idle();
      upstream.write(chunk);
    });
    upstream.on("data", (chunk) => {
      idle();
      client.write(chunk);
    });
    upstream.on("close", () => {
      sockets.delete(upstream);
      if (!cut) client.destroy(); // the server closed: pass it on
    });
    client.on("close", () => {
      if (timer !== undefined) clearTimeout(timer);
      cut = true;
      sockets.delete(client);
      upstream.destroy();
    });
    client.on("error", () => {});
    upstream.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    get cuts() {
      return cuts;
    },
    get lostBytes() {
      return lostBytes;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
