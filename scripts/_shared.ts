/**
 * Helpers the scripts share: the repository root, running a command,
 * reading deno.json and the versions it pins.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** The repository root, with a trailing slash. */
export const ROOT: string = fileURLToPath(new URL("../", import.meta.url));

/** What the scripts read from `deno.json`. */
export interface DenoJson {
  version: string;
  imports: Record<string, string>;
}

/** Reads `deno.json`. */
export function readDenoJson(): DenoJson {
  return JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8"));
}

/**
 * The version an `npm:` import map entry pins, e.g. `3.4.9` for
 * `"postgres": "npm:postgres@3.4.9"`.
 *
 * @example
 * ```ts
 * import { pinnedVersion } from "./_shared.ts";
 * pinnedVersion({ version: "1.0.0", imports: { pg: "npm:pg@8.23.1" } }, "pg"); // => "8.23.1"
 * ```
 */
export function pinnedVersion(deno: DenoJson, name: string): string {
  const spec = deno.imports[name];
  const match = spec && /^npm:(?:@[^/@]+\/)?[^@]+@(.+)$/.exec(spec);
  if (!match) {
    throw new Error(`deno.json imports must pin "${name}" as npm:${name}@X`);
  }
  return match[1];
}

/** Runs a command and returns what it printed; fails with its error output when it fails. */
export function capture(command: string, args: string[], cwd: string): string {
  const result = spawnSync(command, args, { cwd, encoding: "utf8" });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed:\n${result.stderr}`);
  }
  return result.stdout;
}

/** Runs a command with the output shown, failing when it fails. */
export function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): void {
  const result = spawnSync(command, args, {
    cwd: options.cwd ?? ROOT,
    stdio: "inherit",
    env: { ...process.env, ...options.env },
  });
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} failed (${
        result.error?.message ?? `exit ${result.status}`
      })`,
    );
  }
}
