/**
 * The demo's pages, rendered on the server. Everything a visitor typed goes
 * through the escaping `html` template.
 *
 * @module
 */
import { Html, html } from "./html.ts";
import { STYLE } from "./style.ts";

/** What the pages know about the visitor's own session. */
export interface Visitor {
  /** The name signed in with, or `undefined` for an anonymous visitor. */
  name: string | undefined;
  /** Page views counted in this session. */
  visits: number;
  /** When the session expires unless the visitor comes back. */
  expires: Date | undefined;
  /** When the session ends however active (sign-in plus the store's `maxLifetime`). */
  endsBy?: Date | undefined;
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
  /** One of the visitor's own sessions (`store.sessionsOf(name)`). */
  mine: boolean;
}

const WHY = html`
  <p class="why">
    Sessions live in a PostgreSQL table, not in the cookie and not in this
    process's memory: they survive a restart of the app, every instance of the
    app shares them, and they can be revoked from the server — "sign out
    everywhere" deletes rows, which no signed cookie can undo.
  </p>
`;

/** `2025-11-27 14:05:31 UTC`: unambiguous, the same on Deno and Node. */
export function formatTime(date: Date | undefined): string {
  if (!date || Number.isNaN(date.getTime())) return "never";
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** A `<time>` showing the clock time only, the full date in its tooltip. */
function clockTime(date: Date | undefined): Html {
  const full = formatTime(date);
  if (!date || Number.isNaN(date.getTime())) return html`${full}`;
  const iso = date.toISOString();
  return html`<time datetime="${iso}" title="${full}">${full.slice(11)}</time>`;
}

function plural(count: number, one: string, many: string): string {
  return count === 1 ? one : many;
}

type PageName = "home" | "sessions" | "error";

function navLink(href: string, label: string, current: boolean): Html {
  return current
    ? html`<a href="${href}" aria-current="page">${label}</a>`
    : html`<a href="${href}">${label}</a>`;
}

function layout(
  title: string,
  page: PageName,
  who: string,
  body: Html,
): Html {
  return html`
    <!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>${title} · connect-postgres-simple demo</title>
        <style>${new Html(STYLE)}</style>
      </head>
      <body>
        <header>
          <nav class="bar">
            <strong>connect-postgres-simple demo</strong>
            ${navLink("/", "Counter", page === "home")}
            ${navLink("/sessions", "Sessions", page === "sessions")}
            <span class="muted" id="who">${who}</span>
          </nav>
        </header>
        <main>${body} ${WHY}</main>
      </body>
    </html>
  `;
}

function whoText(visitor: Visitor): string {
  return visitor.name === undefined
    ? "not signed in"
    : `signed in as ${visitor.name}`;
}

function counterCard(visitor: Visitor): Html {
  const expires = visitor.expires?.toISOString() ?? "";
  const when = formatTime(visitor.expires);
  return html`
    <p class="muted">You have loaded this page</p>
    <p class="counter" id="visits">${visitor.visits}</p>
    <p class="muted">
      ${plural(visitor.visits, "time", "times")} in this session. It expires at
      <time id="expires" datetime="${expires}">${when}</time>
      unless you come back: each visit moves it.
    </p>
    ${visitor.endsBy
      ? html`<p class="muted">
        Signed in sessions last 8 hours at most, however active: this one ends by
        <time id="ends-by" datetime="${visitor.endsBy.toISOString()}">${
        formatTime(visitor.endsBy)
      }</time> (the store's <code>maxLifetime</code>).
      </p>`
      : ""}
  `;
}

function signInCard(error: string | undefined): Html {
  const message = error ? html`<p class="error" role="alert">${error}</p>` : "";
  return html`
    <section class="card">
      <h1>Sign in</h1>
      <p>
        Pick any name, no password: it is kept in your session, in PostgreSQL.
        Sign in with the same name in another browser to see both sessions.
      </p>
      <form method="post" action="/sign-in" class="row">
        <input
          type="text"
          name="name"
          placeholder="Your name"
          maxlength="40"
          required
          autofocus
          aria-label="Your name"
        >
        <button type="submit">Sign in</button>
      </form>
      ${message}
    </section>
  `;
}

/** The counter page: the sign-in form for anonymous visitors, the session for the others. */
export function homePage(visitor: Visitor, error?: string): Html {
  const body = visitor.name === undefined
    ? html`
      ${signInCard(error)}
      <section class="card">${counterCard(visitor)}</section>
    `
    : html`
      <section class="card">
        <h1>Hello, <span id="name">${visitor.name}</span></h1>
        ${counterCard(visitor)}
        <div class="row">
          <a class="button quiet" href="/sessions">See all sessions</a>
          <form method="post" action="/sign-out">
            <button type="submit" class="danger">Sign out</button>
          </form>
        </div>
      </section>
    `;
  return layout("Counter", "home", whoText(visitor), body);
}

function sessionRow(row: SessionRow, mine: boolean): Html {
  const name = row.name ?? html`<span class="muted">anonymous</span>`;
  const badge = row.current
    ? html`<span class="badge">this browser</span>`
    : "";
  const action = mine
    ? html`
      <form method="post" action="/sign-out">
        <input type="hidden" name="session" value="${row.handle}">
        <button type="submit" class="quiet">Sign out this session</button>
      </form>
    `
    : "";
  return html`
    <tr class="${row.current ? "current" : ""}">
      <td>${name}${badge}</td>
      <td class="num">${row.visits}</td>
      <td class="num">${clockTime(row.expires)}</td>
      <td><code>${row.handle}</code></td>
      <td>${action}</td>
    </tr>
  `;
}

function signOutEverywhere(name: string, count: number): Html {
  const reach = count === 1
    ? "ends your one session"
    : `ends all ${count} sessions of ${name}, in every browser`;
  return html`
    <div class="row">
      <form method="post" action="/sign-out-everywhere">
        <button type="submit" class="danger">Sign out everywhere</button>
      </form>
      <span class="muted">${reach}</span>
    </div>
  `;
}

/** The sessions page: every unexpired session in the store. */
export function sessionsPage(
  visitor: Visitor,
  rows: readonly SessionRow[],
  hidden: number,
): Html {
  const name = visitor.name;
  const mine = rows.filter((row) => row.mine);
  const verb = plural(mine.length, "is", "are");
  const summary = name === undefined ? "" : html`
    <span id="mine">${mine.length}</span> of them ${verb} signed in as ${name}.
  `;
  const more = hidden > 0 ? html`<p class="muted">and ${hidden} more.</p>` : "";
  const actions = name === undefined
    ? html`<div class="row"><a class="button" href="/">Sign in</a></div>`
    : signOutEverywhere(name, mine.length);
  const body = html`
    <section class="card">
      <h1>Active sessions</h1>
      <p class="muted">
        Every unexpired session in the table, read with
        <code>store.all()</code>; yours with
        <code>store.sessionsOf(name)</code>. ${summary}
      </p>
      <table id="sessions">
        <thead>
          <tr>
            <th>Name</th>
            <th>Visits</th>
            <th>Expires</th>
            <th>Session</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          ${rows.map((row) => sessionRow(row, row.mine))}
        </tbody>
      </table>
      ${more} ${actions}
    </section>
  `;
  return layout("Sessions", "sessions", whoText(visitor), body);
}

/** A short page for errors, with no detail a visitor should not see. */
export function errorPage(status: number, message: string): Html {
  const body = html`
    <section class="card">
      <h1>${status}</h1>
      <p>${message}</p>
      <p><a href="/">Back to the counter</a></p>
    </section>
  `;
  return layout("Error", "error", "", body);
}
