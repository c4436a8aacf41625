/**
 * The demo's pages, rendered on the server. Everything a visitor typed goes
 * through the escaping `html` template.
 *
 * @module
 */
import { type Html, html } from "./html.ts";

/** What the pages know about the visitor's own session. */
export interface Visitor {
  /** The name signed in with, or `undefined` for an anonymous visitor. */
  name: string | undefined;
  /** Page views counted in this session. */
  visits: number;
  /** When the session expires unless the visitor comes back. */
  expires: Date | undefined;
}

/** One row of the sessions page. */
export interface SessionRow {
  /** A short, non-secret handle of the session id (never the id itself). */
  handle: string;
  name: string | undefined;
  visits: number;
  expires: Date | undefined;
  /** The session of the browser looking at the page. */
  current: boolean;
}

const STYLE = `
:root { color-scheme: light; --ink: #1d2433; --muted: #5b6478; --line: #dde2ea;
  --accent: #2f5bd3; --accent-ink: #fff; --danger: #b3261e; --paper: #f5f7fb; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: var(--paper); }
header { background: #fff; border-bottom: 1px solid var(--line); }
header .bar, main { max-width: 46rem; margin: 0 auto; padding: 0.9rem 1.25rem; }
header .bar { display: flex; gap: 1.25rem; align-items: baseline; }
header strong { margin-right: auto; }
header a { color: var(--muted); text-decoration: none; }
header a[aria-current] { color: var(--ink); font-weight: 600; }
main { padding-top: 1.75rem; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px;
  padding: 1.25rem 1.5rem; margin-bottom: 1.25rem; }
h1 { font-size: 1.5rem; margin: 0 0 0.75rem; }
h2 { font-size: 1.1rem; margin: 0 0 0.5rem; }
.counter { font-size: 3rem; font-weight: 700; line-height: 1; color: var(--accent); }
.muted { color: var(--muted); }
.why { font-size: 0.95rem; color: var(--muted); border-left: 3px solid var(--accent);
  padding-left: 0.9rem; margin: 0; }
form { display: inline; }
.row { display: flex; gap: 0.6rem; flex-wrap: wrap; align-items: center; margin-top: 1rem; }
input[type=text] { font: inherit; padding: 0.45rem 0.7rem; border: 1px solid var(--line);
  border-radius: 6px; min-width: 16rem; }
button, .button { font: inherit; padding: 0.45rem 0.9rem; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--accent); background: var(--accent); color: var(--accent-ink);
  text-decoration: none; display: inline-block; }
button.quiet, .button.quiet { background: #fff; color: var(--accent); }
button.danger { background: #fff; color: var(--danger); border-color: var(--danger); }
table { width: 100%; border-collapse: collapse; font-size: 0.95rem; }
th, td { text-align: left; padding: 0.5rem 0.4rem; border-bottom: 1px solid var(--line); }
th { color: var(--muted); font-weight: 600; font-size: 0.85rem; }
td.num { font-variant-numeric: tabular-nums; }
code { font-size: 0.85rem; }
.badge { font-size: 0.75rem; background: #e6edff; color: var(--accent); border-radius: 999px;
  padding: 0.1rem 0.5rem; margin-left: 0.4rem; }
.error { color: var(--danger); margin: 0.5rem 0 0; }
`;

const WHY = html`<p class="why">
  Sessions live in a PostgreSQL table, not in the cookie and not in this
  process's memory: they survive a restart of the app, every instance of the
  app shares them, and they can be revoked from the server — "sign out
  everywhere" deletes rows, which no signed cookie can undo.
</p>`;

/** `2025-11-27 14:05:31 UTC`: unambiguous, the same on Deno and Node. */
export function formatTime(date: Date | undefined): string {
  if (!date || Number.isNaN(date.getTime())) return "never";
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

function layout(
  title: string,
  current: "home" | "sessions",
  visitor: Visitor,
  body: Html,
): Html {
  const nav = (href: string, page: typeof current, label: string): Html =>
    current === page
      ? html`<a href="${href}" aria-current="page">${label}</a>`
      : html`<a href="${href}">${label}</a>`;
  return html`
    <!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>${title} · connect-postgres-simple demo</title>
        <style>${STYLE}</style>
      </head>
      <body>
        <header>
          <div class="bar">
      <strong>connect-postgres-simple demo</strong>
      ${nav("/", "home", "Counter")}
      ${nav("/sessions", "sessions", "Sessions")}
      <span class="muted" id="who">${visitor.name === undefined
        ? "not signed in"
        : `signed in as ${visitor.name}`}</span>
          </div>
        </header>
        <main>
    ${body}
    ${WHY}
        </main>
      </body>
    </html>
  `;
}

function visitsText(visits: number): string {
  return visits === 1 ? "time" : "times";
}

/** The counter page: the sign-in form for anonymous visitors, the session for the others. */
export function homePage(visitor: Visitor, error?: string): Html {
  const counter = html`<p class="muted">You have loaded this page</p>
<p class="counter" id="visits">${visitor.visits}</p>
<p class="muted">${visitsText(visitor.visits)} in this session. It expires at
<time id="expires" datetime="${visitor.expires?.toISOString() ?? ""}">${
    formatTime(visitor.expires)
  }</time> unless you come back: each visit moves it.</p>`;

  const body = visitor.name === undefined
    ? html`<section class="card">
<h1>Sign in</h1>
<p>Pick any name, no password: it is kept in your session, in PostgreSQL.
Sign in with the same name in another browser to see both sessions.</p>
<form method="post" action="/sign-in" class="row">
  <input type="text" name="name" placeholder="Your name" maxlength="40" required autofocus aria-label="Your name">
  <button type="submit">Sign in</button>
</form>
${error ? html`<p class="error" role="alert">${error}</p>` : ""}
</section>
<section class="card">${counter}</section>`
    : html`<section class="card">
<h1>Hello, <span id="name">${visitor.name}</span></h1>
${counter}
<div class="row">
  <a class="button quiet" href="/sessions">See all sessions</a>
  <form method="post" action="/sign-out"><button type="submit" class="danger">Sign out</button></form>
</div>
</section>`;
  return layout("Counter", "home", visitor, body);
}

/** The sessions page: every unexpired session in the store. */
export function sessionsPage(
  visitor: Visitor,
  rows: readonly SessionRow[],
  hidden: number,
): Html {
  const mine = visitor.name === undefined
    ? 0
    : rows.filter((row) => row.name === visitor.name).length;
  const line = (row: SessionRow): Html =>
    html`<tr class="${row.current ? "current" : ""}" data-name="${
      row.name ?? ""
    }">
  <td>${row.name ?? html`<span class="muted">anonymous</span>`}${
      row.current ? html`<span class="badge">this browser</span>` : ""
    }</td>
  <td class="num">${row.visits}</td>
  <td class="num">${formatTime(row.expires)}</td>
  <td><code>${row.handle}</code></td>
  <td>${
      visitor.name !== undefined && row.name === visitor.name
        ? html`
          <form method="post" action="/sign-out">
            <input type="hidden" name="session" value="${row.handle}">
            <button type="submit" class="quiet">Sign out this session</button>
          </form>
        `
        : ""
    }</td>
</tr>`;

  const body = html`<section class="card">
<h1>Active sessions</h1>
<p class="muted">Every unexpired session in the table, read with
<code>store.all()</code>${
    visitor.name === undefined
      ? ""
      : html`; <span id="mine">${mine}</span> ${
        mine === 1 ? "is" : "are"
      } signed in as ${visitor.name}`
  }.</p>
<table id="sessions">
<thead><tr><th>Name</th><th>Visits</th><th>Expires</th><th>Session</th><th></th></tr></thead>
<tbody>
${rows.map(line)}
</tbody>
</table>
${hidden > 0 ? html`<p class="muted">and ${hidden} more.</p>` : ""}
${
    visitor.name === undefined
      ? html`<div class="row"><a class="button" href="/">Sign in</a></div>`
      : html`
        <div class="row">
          <form method="post" action="/sign-out-everywhere">
            <button type="submit" class="danger">Sign out everywhere</button>
          </form>
          <span
            class="muted">ends all ${mine} ${mine === 1
              ? "session"
              : "sessions"} of ${visitor.name}, in every browser</span>
        </div>
      `
  }
</section>`;
  return layout("Sessions", "sessions", visitor, body);
}

/** A short page for errors, with no detail a visitor should not see. */
export function errorPage(status: number, message: string): Html {
  return layout(
    "Error",
    "home",
    { name: undefined, visits: 0, expires: undefined },
    html`
      <section class="card">
        <h1>${status}</h1>
        <p>${message}</p>
        <p><a href="/">Back to the counter</a></p>
      </section>
    `,
  );
}
