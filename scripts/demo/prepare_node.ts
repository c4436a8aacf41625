/**
 * Prepares the demo for Node in `.tmp/demo-node`, from the built npm package,
 * the way a Node user gets it:
 *
 * 1. packs `npm/` (written by `deno task build`) with `npm pack`;
 * 2. installs that tarball, `express` and `express-session` (the versions
 *    deno.json pins) into `.tmp/demo-node` with `npm install`;
 * 3. bundles the demo app (`run.ts` and what it imports, the
 *    store excluded) into `demo_app.cjs` with `deno bundle`, leaving
 *    `express` and `express-session` to `require`;
 * 4. copies `node_main.cjs`, which `require`s the package, to
 *    `main.cjs`.
 *
 * ```sh
 * deno task demo:node [--port N]   # build, prepare, then node .tmp/demo-node/main.cjs
 * ```
 *
 * @module
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { capture, pinnedVersion, readDenoJson, ROOT } from "../_shared.ts";

/** Where the Node demo is prepared. */
export const NODE_DEMO_DIR: string = join(ROOT, ".tmp", "demo-node");
const PACKAGE_DIR = join(ROOT, "npm");

/** Prepares `.tmp/demo-node`; returns the path of its `main.cjs`. */
export function prepareNodeDemo(): string {
  const deno = readDenoJson();
  if (!existsSync(join(PACKAGE_DIR, "package.json"))) {
    throw new Error("npm/ holds no package: run `deno task build` first");
  }
  mkdirSync(NODE_DEMO_DIR, { recursive: true });
  for (const old of readdirSync(NODE_DEMO_DIR)) {
    if (old.endsWith(".tgz")) rmSync(join(NODE_DEMO_DIR, old));
  }
  const tarball = capture(
    "npm",
    ["pack", PACKAGE_DIR, "--pack-destination", NODE_DEMO_DIR, "--silent"],
    ROOT,
  ).trim().split("\n").pop()!;

  writeFileSync(
    join(NODE_DEMO_DIR, "package.json"),
    JSON.stringify(
      {
        private: true,
        description:
          "The connect-postgres-simple demo on Node (made by scripts/demo/prepare_node.ts)",
        type: "commonjs",
        dependencies: {
          "connect-postgres-simple": `file:./${tarball}`,
          express: pinnedVersion(deno, "express"),
          "express-session": pinnedVersion(deno, "express-session"),
        },
      },
      null,
      2,
    ) + "\n",
  );
  // A tarball of the same name may hold new code: install it afresh.
  rmSync(join(NODE_DEMO_DIR, "node_modules", "connect-postgres-simple"), {
    recursive: true,
    force: true,
  });
  rmSync(join(NODE_DEMO_DIR, "package-lock.json"), { force: true });
  capture(
    "npm",
    ["install", "--no-audit", "--no-fund", "--loglevel=error"],
    NODE_DEMO_DIR,
  );

  capture(Deno.execPath(), [
    "bundle",
    "--quiet",
    "--format=cjs",
    "--platform=deno",
    "--external=express",
    "--external=express-session",
    `--output=${join(NODE_DEMO_DIR, "demo_app.cjs")}`,
    join(ROOT, "scripts", "demo", "run.ts"),
  ], ROOT);
  const main = join(NODE_DEMO_DIR, "main.cjs");
  copyFileSync(join(ROOT, "scripts", "demo", "node_main.cjs"), main);
  return main;
}

if (import.meta.main) {
  try {
    const main = prepareNodeDemo();
    console.error(`demo prepare_node: ready: node ${main}`);
  } catch (error) {
    console.error(`demo prepare_node: ${(error as Error).message}`);
    process.exit(1);
  }
}
