/**
 * The compiler checks the store class against the public types: a copy of
 * the source with one method renamed or retyped must fail `deno check`,
 * while the copy as it is passes. Deno only: it runs `deno check`.
 *
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/**
 * `deno check` on a copy of mod.ts and src/ (inside the repository, so the
 * import map and node_modules apply) with `edit` applied to src/store.ts.
 */
function checkWith(edit: (store: string) => string): {
  ok: boolean;
  output: string;
} {
  mkdirSync(join(ROOT, ".tmp"), { recursive: true });
  const dir = mkdtempSync(join(ROOT, ".tmp", "drift-"));
  try {
    cpSync(join(ROOT, "mod.ts"), join(dir, "mod.ts"));
    cpSync(join(ROOT, "src"), join(dir, "src"), { recursive: true });
    const store = join(dir, "src", "store.ts");
    const source = readFileSync(store, "utf8");
    const edited = edit(source);
    assert.notEqual(edited, source, "the edit changed the class");
    writeFileSync(store, edited);
    const result = spawnSync(Deno.execPath(), [
      "check",
      "--quiet",
      join(dir, "mod.ts"),
    ], { cwd: ROOT, encoding: "utf8" });
    return { ok: result.status === 0, output: result.stdout + result.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("the unedited store class type-checks", () => {
  const { ok, output } = checkWith((s) => `${s}\n`);
  assert.ok(ok, output);
});

const DRIFTS: [string, (s: string) => string, RegExp][] = [
  [
    "a renamed method (ids → idz)",
    (s) => s.replaceAll(/\bids\(/g, "idz("),
    /ids/,
  ],
  [
    "a method that resolves to the wrong type (length → string)",
    (s) =>
      s.replace(
        "override length(): Promise<number>;",
        "override length(): Promise<string>;",
      ),
    /length/,
  ],
  [
    "a method whose callback has the wrong type (pruneSessions)",
    (s) =>
      s.replace(
        "pruneSessions(callback: Callback<number>): Promise<void>;",
        "pruneSessions(callback: Callback<string>): Promise<void>;",
      ),
    /pruneSessions/,
  ],
  [
    "a method left out (clear)",
    (s) =>
      s.replace(
        / {4}override clear\(callback\?: Callback<void>\): Promise<void> \{\n.*\n {4}\}\n/,
        "",
      ),
    /clear/,
  ],
];

for (const [what, edit, mentions] of DRIFTS) {
  test(`the compiler refuses a store class with ${what}`, () => {
    const { ok, output } = checkWith(edit);
    assert.equal(ok, false, "deno check passed a drifted class");
    assert.match(output, mentions);
  });
}
