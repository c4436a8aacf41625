/**
 * The documentation's links: every relative link and `#anchor` in README.md,
 * CHANGELOG.md and docs/*.md points at a file and heading that exist. Deno
 * only: the docs are not part of the npm package's test project.
 *
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The Markdown files checked, by path from the repository root. */
function documents(): string[] {
  const docs = readdirSync(join(ROOT, "docs"))
    .filter((name) => name.endsWith(".md"))
    .map((name) => `docs/${name}`);
  return ["README.md", "CHANGELOG.md", ...docs];
}

/** The text outside fenced code blocks, line by line (code lines blanked). */
function proseLines(markdown: string): string[] {
  let fenced = false;
  return markdown.split("\n").map((line) => {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      return "";
    }
    return fenced ? "" : line;
  });
}

/**
 * The anchors GitHub gives a file's headings: lower case, punctuation
 * dropped, spaces to hyphens, `-1`, `-2`... for repeats.
 */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const found = new Set<string>();
  for (const line of proseLines(markdown)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const text = heading[1]
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
      .replace(/[`*]/g, "");
    const slug = text.toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "")
      .replace(/ /g, "-");
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    found.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return found;
}

/** Link targets in a file: inline links and images, and reference definitions. */
function links(markdown: string): string[] {
  const targets: string[] = [];
  for (const line of proseLines(markdown)) {
    const text = line.replace(/`[^`]*`/g, "");
    for (const [, target] of text.matchAll(/\]\(\s*<?([^)\s>]+)>?[^)]*\)/g)) {
      targets.push(target);
    }
    const definition = /^\s*\[[^\]]+\]:\s*<?(\S+?)>?(\s.*)?$/.exec(text);
    if (definition) targets.push(definition[1]);
  }
  return targets;
}

test("every relative link and #anchor in README.md, CHANGELOG.md and docs/ resolves", () => {
  const broken: string[] = [];
  for (const doc of documents()) {
    const here = join(ROOT, doc);
    for (const target of links(readFileSync(here, "utf8"))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:...
      const [path, anchor] = target.split("#", 2);
      const file = path === "" ? here : join(dirname(here), path);
      if (!existsSync(file)) {
        broken.push(`${doc}: ${target} (no ${relative(ROOT, file)})`);
      } else if (anchor !== undefined && file.endsWith(".md")) {
        if (!anchors(readFileSync(file, "utf8")).has(anchor)) {
          broken.push(`${doc}: ${target} (no heading #${anchor})`);
        }
      }
    }
  }
  assert.deepEqual(broken, []);
});

test("the docs link to each other: every file in docs/ is reached from the README", () => {
  // Followed link by link, so a topic can hang off another (architecture off
  // development) without a line of its own in a README kept short.
  const reached = new Set<string>();
  const visit = (doc: string) => {
    if (reached.has(doc) || !existsSync(join(ROOT, doc))) return;
    reached.add(doc);
    for (const target of links(readFileSync(join(ROOT, doc), "utf8"))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
      const path = target.split("#")[0];
      if (!path.endsWith(".md")) continue;
      visit(relative(ROOT, join(dirname(join(ROOT, doc)), path)));
    }
  };
  visit("README.md");
  const unreached = documents().filter((doc) =>
    doc.startsWith("docs/") && !reached.has(doc)
  );
  assert.deepEqual(unreached, []);
});

test("no paragraph line starts with '1. ', which Markdown renders as a list", () => {
  const found: string[] = [];
  for (const doc of documents()) {
    const lines = proseLines(readFileSync(join(ROOT, doc), "utf8"));
    lines.forEach((line, i) => {
      const previous = lines[i - 1] ?? "";
      const afterProse = previous.trim() !== "" &&
        !/^\s*([-*+]|\d+\.)\s/.test(previous) && !/^\s*[|#]/.test(previous);
      if (/^\s*1\.\s/.test(line) && afterProse) {
        found.push(`${doc}:${i + 1}: ${line.trim()}`);
      }
    });
  }
  assert.deepEqual(found, []);
});

test("the anchors follow GitHub's rules", () => {
  assert.deepEqual(
    [
      ...anchors(
        "# Known postgres.js 3.4.9 defects\n## A `code` [link](x.md)\n## A\n## A\n```\n# not\n```",
      ),
    ],
    ["known-postgresjs-349-defects", "a-code-link", "a", "a-1"],
  );
});
