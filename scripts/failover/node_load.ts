/**
 * Prepares the failover load to run on Node with the npm package as users
 * get it: builds `npm/`, packs it, installs the tarball and express-session
 * into a temporary Node project, and bundles `load.ts` (express-session and
 * the store left to Node to resolve) into `load.mjs` there.
 *
 * @module
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildNpm, OUT_DIR } from "../npm/build.ts";
import { capture, pinnedVersion, readDenoJson, ROOT } from "../_shared.ts";

/** How to start the load on Node. */
export interface NodeLoad {
  /** The command and its arguments. */
  argv: string[];
  /** The project directory to start it in. */
  cwd: string;
  /** Environment variables the load needs on top of the runner's. */
  env: Record<string, string>;
  /** Removes the project. */
  remove(): void;
}

/** Builds, packs and installs the package and bundles the load; see the module doc. */
export function prepareNodeLoad(): NodeLoad {
  buildNpm();
  const project = mkdtempSync(join(tmpdir(), "cps-failover-node-"));
  try {
    const tarball = capture(
      "npm",
      ["pack", OUT_DIR, "--pack-destination", project, "--silent"],
      ROOT,
    ).trim().split("\n").pop()!;
    writeFileSync(
      join(project, "package.json"),
      JSON.stringify({
        private: true,
        type: "module",
        dependencies: {
          "connect-postgres-simple": `file:./${tarball}`,
          "express-session": pinnedVersion(readDenoJson(), "express-session"),
        },
      }) + "\n",
    );
    capture(
      "npm",
      ["install", "--no-audit", "--no-fund", "--loglevel=error"],
      project,
    );
    capture(Deno.execPath(), [
      "bundle",
      "--quiet",
      "--format=esm",
      "--platform=deno",
      "--external=express-session",
      `--output=${join(project, "load.mjs")}`,
      join(ROOT, "scripts", "failover", "load.ts"),
    ], ROOT);
  } catch (error) {
    rmSync(project, { recursive: true, force: true });
    throw error;
  }
  return {
    argv: ["node", join(project, "load.mjs")],
    cwd: project,
    env: { STORE_MODULE: "connect-postgres-simple" },
    remove: () => rmSync(project, { recursive: true, force: true }),
  };
}
