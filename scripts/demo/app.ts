/**
 * The demo's Express app: a visit counter kept in the session, sign-in with
 * a name, and a page of every session in the store with "sign out this
 * session" and "sign out everywhere", which go through the store's
 * `sessionsOf` and `destroyOf` (the store is made with `userKey: "name"`).
 *
 * Runtime-neutral: it runs on Deno (`npm:` packages through the import map)
 * and, bundled, on Node from the built npm package. The store is passed in.
 *
 * @module
 */
import express from "express";
import type { Express, NextFunction, Request, Response } from "express";
import session from "express-session";
import { createHash } from "node:crypto";
import type { PostgresStore } from "../../mod.ts";
import {
  errorPage,
  homePage,
  type SessionRow,
  sessionsPage,
  type Visitor,
} from "./pages.ts";

declare module "express-session" {
  interface SessionData {
    /** The name signed in with. */
    name?: string;
    /** Page views of the counter page in this session. */
    visits?: number;
    /** When the visitor signed in, in milliseconds since the epoch. */
    signedInAt?: number;
  }
}

/** How long a session lives after the visitor's last request. */
export const SESSION_MAX_AGE_MS = 30 * 60 * 1000;
/** How long a session lives after sign-in however active (the store's `maxLifetime`). */
export const MAX_LIFETIME_SECONDS = 8 * 3600;
/** The longest name accepted at sign-in. */
export const MAX_NAME_LENGTH = 40;
/** The most rows the sessions page shows. */
const MAX_ROWS = 100;

/** What the app needs. */
export interface DemoAppOptions {
  /** The session store, made with `userKey: "name"`. */
  store: PostgresStore;
  /** The secret that signs session cookies. */
  secret: string;
}

/** A short, non-secret handle for a session id, safe to put in a page. */
export function sessionHandle(sid: string): string {
  return createHash("sha256").update(sid).digest("hex").slice(0, 12);
}

function visitorOf(req: Request): Visitor {
  return {
    name: req.session.name,
    visits: req.session.visits ?? 0,
    expires: req.session.cookie.expires ?? undefined,
    endsBy: req.session.signedInAt === undefined
      ? undefined
      : new Date(req.session.signedInAt + MAX_LIFETIME_SECONDS * 1000),
  };
}

/** Runs an express-session callback API as a promise. */
function promisify(run: (done: (error?: unknown) => void) => void) {
  return new Promise<void>((resolve, reject) =>
    run((error) => (error ? reject(error) : resolve()))
  );
}

/** Trims a submitted name and checks it; returns an error message when it is unusable. */
function readName(body: unknown): string | { error: string } {
  const raw = (body as { name?: unknown } | undefined)?.name;
  const name = typeof raw === "string"
    ? raw.replace(/\p{Cc}/gu, "").trim()
    : "";
  if (name === "") return { error: "Type a name to sign in." };
  if (name.length > MAX_NAME_LENGTH) {
    return { error: `A name has at most ${MAX_NAME_LENGTH} characters.` };
  }
  return name;
}

/**
 * Makes the demo app on a session store.
 *
 * @example
 * ```ts ignore
 * const app = createDemoApp({ store: new PostgresStore(), secret: "s3cret" });
 * app.listen(3000);
 * ```
 */
export function createDemoApp({ store, secret }: DemoAppOptions): Express {
  const app = express();
  app.disable("x-powered-by");
  app.use(express.urlencoded({ extended: false, limit: "4kb" }));
  app.use(session({
    store,
    secret,
    name: "demo.sid",
    resave: false,
    saveUninitialized: false,
    rolling: true,
    cookie: { maxAge: SESSION_MAX_AGE_MS, httpOnly: true, sameSite: "lax" },
  }));
  app.use((_req: Request, res: Response, next: NextFunction) => {
    res.set("Cache-Control", "no-store");
    res.set(
      "Content-Security-Policy",
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    );
    next();
  });

  /** Ends the visitor's own session (a new, empty one starts on the next request). */
  function signOutHere(req: Request): Promise<void> {
    return promisify((done) => req.session.destroy(done));
  }

  app.get("/", (req: Request, res: Response) => {
    req.session.visits = (req.session.visits ?? 0) + 1;
    res.type("html").send(String(homePage(visitorOf(req))));
  });

  app.post("/sign-in", async (req: Request, res: Response) => {
    const name = readName(req.body);
    if (typeof name !== "string") {
      res.status(400).type("html").send(
        String(homePage(visitorOf(req), name.error)),
      );
      return;
    }
    // A new session id at sign-in, so that an id planted before it is worthless.
    const visits = req.session.visits ?? 0;
    await promisify((done) => req.session.regenerate(done));
    req.session.name = name;
    req.session.visits = visits;
    req.session.signedInAt = Date.now();
    res.redirect(303, "/");
  });

  app.post("/sign-out", async (req: Request, res: Response) => {
    const handle = (req.body as { session?: unknown } | undefined)?.session;
    const name = req.session.name;
    if (typeof handle !== "string" || handle === sessionHandle(req.sessionID)) {
      await signOutHere(req);
      res.redirect(303, "/");
      return;
    }
    // Another session of the same name: found among this name's sessions
    // only, so a handle never reaches anyone else's.
    if (name !== undefined) {
      const target = (await store.sessionsOf(name)).find((other) =>
        sessionHandle(other.id) === handle
      );
      if (target) await store.destroy(target.id);
    }
    res.redirect(303, "/sessions");
  });

  app.post("/sign-out-everywhere", async (req: Request, res: Response) => {
    const name = req.session.name;
    if (name !== undefined) {
      await store.destroyOf(name, { except: req.sessionID });
    }
    await signOutHere(req);
    res.redirect(303, "/");
  });

  app.get("/sessions", async (req: Request, res: Response) => {
    const me = visitorOf(req);
    const mine = new Set(
      me.name === undefined
        ? []
        : (await store.sessionsOf(me.name)).map((own) => own.id),
    );
    const rows: SessionRow[] = (await store.all()).map((other) => ({
      handle: sessionHandle(other.id),
      name: other.name,
      visits: other.visits ?? 0,
      expires: other.cookie?.expires
        ? new Date(other.cookie.expires)
        : undefined,
      current: other.id === req.sessionID,
      mine: mine.has(other.id),
    }));
    const rank = (row: SessionRow): number =>
      row.current ? 0 : row.mine ? 1 : 2;
    rows.sort((a, b) =>
      rank(a) - rank(b) ||
      (b.expires?.getTime() ?? 0) - (a.expires?.getTime() ?? 0)
    );
    res.type("html").send(
      String(
        sessionsPage(
          me,
          rows.slice(0, MAX_ROWS),
          Math.max(0, rows.length - MAX_ROWS),
        ),
      ),
    );
  });

  app.use((_req: Request, res: Response) => {
    res.status(404).type("html").send(
      String(errorPage(404, "There is no such page.")),
    );
  });

  app.use(
    (error: unknown, _req: Request, res: Response, _next: NextFunction) => {
      console.error("demo: request failed:", error);
      res.status(500).type("html").send(
        String(errorPage(500, "Something went wrong; the log says what.")),
      );
    },
  );
  return app;
}
