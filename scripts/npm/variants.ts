/**
 * The variants `scripts/npm/test.ts` runs the packed package's suite in:
 * which runtime runs it (Node or Bun, both from npm's point of view: the
 * package as installed by npm) and which postgres.js 3.x the test project
 * installs (the lowest the package's range allows, or the newest).
 *
 * ```sh
 * deno task test:npm                        # Node, postgres.js at the lowest allowed version
 * deno task test:npm -- --postgres=newest   # Node, the newest postgres.js 3.x
 * deno task test:bun                        # = test:npm -- --runtime=bun
 * ```
 *
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** Bun from npm (the `bun` package), the version CI tests. */
export const BUN_VERSION = "1.4.5";

/** What one run of the npm suite uses. */
export interface NpmVariant {
  /** The runtime that runs the compiled suite: `node --test` or `bun test`. */
  runtime: "node" | "bun";
  /** postgres.js at the lowest version the package allows, or the newest. */
  postgres: "lowest" | "newest";
}

/**
 * Reads `--runtime=node|bun` and `--postgres=lowest|newest` (defaults: node,
 * lowest).
 *
 * @throws {Error} on any other argument.
 * @example
 * ```ts
 * import { parseVariant } from "./variants.ts";
 * parseVariant(["--runtime=bun"]); // => { runtime: "bun", postgres: "lowest" }
 * ```
 */
export function parseVariant(args: string[]): NpmVariant {
  const variant: NpmVariant = { runtime: "node", postgres: "lowest" };
  for (const arg of args) {
    if (arg === "--") continue; // `deno task test:npm -- ...` passes it on
    const runtime = /^--runtime=(node|bun)$/.exec(arg);
    const postgres = /^--postgres=(lowest|newest)$/.exec(arg);
    if (runtime) variant.runtime = runtime[1] as NpmVariant["runtime"];
    else if (postgres) {
      variant.postgres = postgres[1] as NpmVariant["postgres"];
    } else {
      throw new Error(
        `test_npm: unknown argument ${arg} (--runtime=node|bun, --postgres=lowest|newest)`,
      );
    }
  }
  return variant;
}

/**
 * The npm spec that installs postgres.js for `variant` from the package's
 * caret `range`: its floor (`^3.4.9` → `3.4.9`) or the range itself, which
 * npm resolves to the newest match in a fresh project.
 */
export function postgresSpec(range: string, variant: NpmVariant): string {
  if (!/^\^\d+\.\d+\.\d+$/.test(range)) {
    throw new Error(`test_npm: postgres must be a caret range, got ${range}`);
  }
  return variant.postgres === "lowest" ? range.slice(1) : range;
}

/**
 * The install arguments for `variant`: postgres.js at `spec` instead of the
 * version deno.json pins, and Bun when it runs the suite.
 */
export function variantInstallArgs(
  specs: string[],
  spec: string,
  variant: NpmVariant,
): string[] {
  const args = specs.filter((s) => !s.startsWith("postgres@"));
  args.push(`postgres@${spec}`);
  if (variant.runtime === "bun") args.push(`bun@${BUN_VERSION}`);
  return args;
}

/**
 * Checks that the project holds one postgres.js, the one its root installed
 * (the package shares the app's copy instead of nesting its own), and at
 * the range's floor when `variant` asks for the lowest; returns its version.
 */
export function checkPostgres(
  project: string,
  packageName: string,
  spec: string,
  variant: NpmVariant,
): string {
  const modules = join(project, "node_modules");
  const version: string = JSON.parse(
    readFileSync(join(modules, "postgres", "package.json"), "utf8"),
  ).version;
  if (existsSync(join(modules, packageName, "node_modules", "postgres"))) {
    throw new Error(
      `test_npm: ${packageName} installed a postgres.js of its own beside the app's ${version}`,
    );
  }
  if (variant.postgres === "lowest" && version !== spec) {
    throw new Error(
      `test_npm: postgres.js ${version} installed, ${spec} asked`,
    );
  }
  return version;
}

/** The command that runs the compiled test files in `project`. */
export function testCommand(
  project: string,
  variant: NpmVariant,
  files: string[],
): [string, string[]] {
  if (variant.runtime === "bun") {
    // bun test reads bare names as filters: "./" makes each one a path.
    return [join(project, "node_modules", ".bin", "bun"), [
      "test",
      "--timeout=120000",
      ...files.map((file) => `./${file}`),
    ]];
  }
  return ["node", [
    "--test",
    "--test-reporter=spec",
    "--test-timeout=120000",
    // As under `deno test`: a file whose tests are done does not wait
    // for sockets or timers a test left open.
    "--test-force-exit",
    ...files,
  ]];
}
