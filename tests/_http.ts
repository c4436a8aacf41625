/**
 * An Express app that counts visits in the session, and a request helper
 * that carries the cookie by hand as a browser would: shared by the HTTP
 * tests.
 *
 * @module
 */
import { once } from "node:events";
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import session from "express-session";
import type { Store } from "express-session";
import type express from "express";

/** Express 4 or 5: both are called the same way here. */
export type ExpressFactory = typeof express;

/** A running app: its base URL, and how to stop it. */
export interface CounterApp {
  url: string;
  close(): Promise<void>;
}

/** What the app answers: the visit count kept in the session, and its id. */
export interface Visit {
  status: number;
  count: number;
  id: string;
  /**
   * The `name=value` part of the response's last `Set-Cookie`, if any (the
   * one a browser keeps when a cookie is set twice, as hono-sessions does
   * when it rotates the session id).
   */
  setCookie: string | undefined;
}

/**
 * Starts an app on a free loopback port: `GET /count` adds a visit,
 * `GET /peek` reads without changing the session (so express-session
 * touches it), `POST /logout` destroys the session.
 */
export async function startCounterApp(
  makeApp: ExpressFactory,
  store: Store,
  { name, secret = "one secret for every app" }: {
    name?: string;
    secret?: string;
  } = {},
): Promise<CounterApp> {
  const app = makeApp();
  app.use(session({
    store,
    name,
    secret,
    resave: false,
    saveUninitialized: false,
    cookie: { maxAge: 60_000 },
  }));
  app.get("/count", (req, res) => {
    const data = req.session as unknown as { count?: number };
    data.count = (data.count ?? 0) + 1;
    res.json({ count: data.count, id: req.sessionID });
  });
  app.get("/peek", (req, res) => {
    const data = req.session as unknown as { count?: number };
    res.json({ count: data.count ?? 0, id: req.sessionID });
  });
  app.post("/logout", (req, res, next) => {
    req.session.destroy((error) => error ? next(error) : res.json({}));
  });
  const server = createServer(app);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      const closed = once(server, "close");
      server.close();
      server.closeAllConnections();
      await closed;
    },
  };
}

/**
 * One request without keep-alive to `url + path` (POST for `/logout`, GET
 * otherwise); `cookie` is sent as the `Cookie` header.
 */
export function visit(
  url: string,
  path: string,
  cookie?: string,
): Promise<Visit> {
  return new Promise((resolve, reject) => {
    const req = request(url + path, {
      method: path === "/logout" ? "POST" : "GET",
      agent: false,
      headers: cookie ? { cookie } : {},
    }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => body += chunk);
      res.on("error", reject);
      res.on("end", () => {
        let parsed: { count?: number; id?: string };
        try {
          parsed = JSON.parse(body);
        } catch {
          // An app that failed (a 500 in plain text) fails the test, not hangs it.
          reject(new Error(`${path}: ${res.statusCode}, not JSON: ${body}`));
          return;
        }
        resolve({
          status: res.statusCode ?? 0,
          count: parsed.count ?? 0,
          id: parsed.id ?? "",
          setCookie: res.headers["set-cookie"]?.at(-1)?.split(";")[0],
        });
      });
    });
    req.on("error", reject);
    req.end();
  });
}
