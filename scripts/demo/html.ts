/**
 * A tagged template for HTML that escapes every interpolated value unless it
 * is itself a fragment made by {@linkcode html}. Names typed by visitors are
 * untrusted: they only ever reach a page through this.
 *
 * @module
 */

/** A piece of HTML that is safe to insert as is. */
export class Html {
  /** The markup. */
  readonly markup: string;
  /** Wraps markup that is known to be safe. */
  constructor(markup: string) {
    this.markup = markup;
  }
  /** The markup, for `res.send`. */
  toString(): string {
    return this.markup;
  }
}

const ENTITIES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * Escapes text for an HTML element or a quoted attribute.
 *
 * @example
 * ```ts
 * import { escapeHtml } from "./html.ts";
 * escapeHtml(`<b title="x">&`); // "&lt;b title=&quot;x&quot;&gt;&amp;"
 * ```
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ENTITIES[char]);
}

/** An interpolated value: text (escaped), a fragment, a list of them, or nothing. */
export type HtmlValue =
  | string
  | number
  | Html
  | null
  | undefined
  | false
  | readonly HtmlValue[];

function render(value: HtmlValue): string {
  if (value instanceof Html) return value.markup;
  if (Array.isArray(value)) return value.map(render).join("");
  if (value === null || value === undefined || value === false) return "";
  return escapeHtml(String(value));
}

/**
 * Builds a fragment: the template's literal parts as written, every value
 * escaped (fragments and lists of fragments are inserted as they are).
 *
 * @example
 * ```ts
 * import { html } from "./html.ts";
 * const name = "<script>";
 * String(html`<p>Hello, ${name}</p>`); // "<p>Hello, &lt;script&gt;</p>"
 * ```
 */
export function html(
  strings: TemplateStringsArray,
  ...values: HtmlValue[]
): Html {
  let markup = strings[0];
  values.forEach((value, i) => {
    markup += render(value) + strings[i + 1];
  });
  return new Html(markup);
}
