/**
 * The npm package's links and the variants its suite runs in
 * (`scripts/npm/links.ts`, `scripts/npm/variants.ts`). Deno only: the
 * scripts are not part of the package.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  githubRepository,
  linksFor,
  packageLinks,
} from "../scripts/npm/links.ts";
import {
  BUN_VERSION,
  checkPostgres,
  parseVariant,
  postgresSpec,
  testCommand,
  variantInstallArgs,
} from "../scripts/npm/variants.ts";

test("a GitHub remote in any of its forms names owner/name; others name nothing", () => {
  for (
    const url of [
      "https://github.com/owner/repo.git",
      "https://github.com/owner/repo",
      "git+https://github.com/owner/repo.git",
      "git@github.com:owner/repo.git",
      "ssh://git@github.com/owner/repo.git\n",
    ]
  ) assert.equal(githubRepository(url), "owner/repo", url);
  for (
    const url of [
      "https://gitlab.com/owner/repo.git",
      "/srv/git/repo.git",
      "https://github.com/owner",
      "",
    ]
  ) assert.equal(githubRepository(url), undefined, url);
});

test("links point at the GitHub repository, or there are none", () => {
  assert.deepEqual(linksFor("o/r"), {
    repository: { type: "git", url: "git+https://github.com/o/r.git" },
    homepage: "https://github.com/o/r#readme",
    bugs: { url: "https://github.com/o/r/issues" },
  });
  assert.deepEqual(linksFor(undefined), {});
  assert.deepEqual(linksFor("not a repository"), {});
});

test("GITHUB_REPOSITORY wins, else a GitHub origin, else no links", () => {
  const dir = mkdtempSync(join(tmpdir(), "cps-links-"));
  try {
    assert.deepEqual(
      packageLinks(dir, { GITHUB_REPOSITORY: "acme/store" }).repository?.url,
      "git+https://github.com/acme/store.git",
    );
    assert.deepEqual(packageLinks(dir, {}), {}, "not a git repository");
    const git = (...args: string[]) =>
      assert.equal(spawnSync("git", args, { cwd: dir }).status, 0);
    git("init", "--quiet");
    assert.deepEqual(packageLinks(dir, {}), {}, "no origin");
    git("remote", "add", "origin", "git@github.com:acme/store.git");
    assert.equal(
      packageLinks(dir, {}).bugs?.url,
      "https://github.com/acme/store/issues",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("variants: node and the lowest postgres.js unless asked; anything else is refused", () => {
  assert.deepEqual(parseVariant([]), { runtime: "node", postgres: "lowest" });
  assert.deepEqual(parseVariant(["--", "--runtime=bun", "--postgres=newest"]), {
    runtime: "bun",
    postgres: "newest",
  });
  assert.throws(() => parseVariant(["--runtime=deno"]), /unknown argument/);
  assert.throws(() => parseVariant(["--postgres"]), /unknown argument/);
});

test("the postgres.js spec is the range's floor or the range; only a caret range is accepted", () => {
  const lowest = parseVariant([]);
  const newest = parseVariant(["--postgres=newest"]);
  assert.equal(postgresSpec("^3.4.9", lowest), "3.4.9");
  assert.equal(postgresSpec("^3.4.9", newest), "^3.4.9");
  assert.throws(() => postgresSpec("3.4.9", lowest), /caret range/);
  assert.deepEqual(
    variantInstallArgs(
      ["express@5.3.0", "postgres@3.4.9"],
      "^3.4.9",
      parseVariant(["--runtime=bun"]),
    ),
    ["express@5.3.0", "postgres@^3.4.9", `bun@${BUN_VERSION}`],
  );
});

test("checkPostgres refuses a second copy under the package, or a version not asked for", () => {
  const project = mkdtempSync(join(tmpdir(), "cps-variant-"));
  const manifest = (dir: string, version: string) => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "package.json"), JSON.stringify({ version }));
  };
  try {
    const modules = join(project, "node_modules");
    manifest(join(modules, "postgres"), "3.4.9");
    const lowest = parseVariant([]);
    assert.equal(checkPostgres(project, "pkg", "3.4.9", lowest), "3.4.9");
    assert.throws(
      () => checkPostgres(project, "pkg", "3.4.8", lowest),
      /3\.4\.9 installed, 3\.4\.8 asked/,
    );
    assert.equal(
      checkPostgres(
        project,
        "pkg",
        "^3.4.8",
        parseVariant(["--postgres=newest"]),
      ),
      "3.4.9",
    );
    manifest(join(modules, "pkg", "node_modules", "postgres"), "3.4.8");
    assert.throws(
      () => checkPostgres(project, "pkg", "3.4.9", lowest),
      /a postgres\.js of its own/,
    );
  } finally {
    rmSync(project, { recursive: true, force: true });
  }
});

test("node --test or bun test, each file a path", () => {
  const files = ["dist/tests/a_test.js", "dist/npm/entry.cjs"];
  const [node, nodeArgs] = testCommand("/p", parseVariant([]), files);
  assert.equal(node, "node");
  assert.deepEqual(nodeArgs.slice(0, 1), ["--test"]);
  assert.deepEqual(nodeArgs.slice(-2), files);
  const [bun, bunArgs] = testCommand(
    "/p",
    parseVariant(["--runtime=bun"]),
    files,
  );
  assert.equal(bun, "/p/node_modules/.bin/bun");
  assert.deepEqual(bunArgs, [
    "test",
    "--timeout=120000",
    "./dist/tests/a_test.js",
    "./dist/npm/entry.cjs",
  ]);
});
