/**
 * The demo's stylesheet: a few rules, no framework, inlined in every page.
 *
 * @module
 */

/** The CSS of every page. */
export const STYLE = `
:root { color-scheme: light; --ink: #1d2433; --muted: #5b6478; --line: #dde2ea;
  --accent: #2f5bd3; --accent-ink: #fff; --danger: #b3261e; --paper: #f5f7fb; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 -apple-system, "Segoe UI", Roboto,
  "Noto Sans", "Liberation Sans", "DejaVu Sans", Arial, sans-serif;
  color: var(--ink); background: var(--paper); }
header { background: #fff; border-bottom: 1px solid var(--line); }
header .bar, main { max-width: 46rem; margin: 0 auto; padding: 0.9rem 1.25rem; }
header .bar { display: flex; gap: 1.25rem; align-items: baseline; white-space: nowrap; }
header strong { margin-right: auto; }
#who { max-width: 16rem; overflow: hidden; text-overflow: ellipsis; }
header a { color: var(--muted); text-decoration: none; }
header a[aria-current] { color: var(--ink); font-weight: 600; }
main { padding-top: 1.75rem; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px;
  padding: 1.25rem 1.5rem; margin-bottom: 1.25rem; }
h1 { font-size: 1.5rem; margin: 0 0 0.75rem; }
h2 { font-size: 1.1rem; margin: 0 0 0.5rem; }
.counter { font-size: 3rem; font-weight: 700; line-height: 1; color: var(--accent);
  margin: 0.25rem 0 0.5rem; }
.counter + p, h1 + p { margin-top: 0; }
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
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
td button { padding: 0.25rem 0.6rem; font-size: 0.85rem; white-space: nowrap; }
code { font: 0.85rem/1.4 ui-monospace, "DejaVu Sans Mono", "Liberation Mono", monospace; }
.badge { white-space: nowrap; font-size: 0.75rem; background: #e6edff; color: var(--accent);
  border-radius: 999px; padding: 0.1rem 0.5rem; margin-left: 0.4rem; }
.error { color: var(--danger); margin: 0.5rem 0 0; }
`;
