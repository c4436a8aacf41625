/**
 * What a release would publish, checked without publishing: the npm package
 * through `npm publish --dry-run`, the JSR package through `deno publish
 * --dry-run`, and the GitHub workflows that publish them through
 * action-validator (from npm, at the version deno.json pins). Both dry runs
 * work offline.
 *
 * ```sh
 * deno task test:release
 * ```
 *
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { buildNpm, OUT_DIR, postgresRange } from "./build.ts";
import { pinnedVersion, readDenoJson, ROOT } from "../_shared.ts";
import { packageLinks } from "./links.ts";

const WORKFLOWS = join(ROOT, ".github", "workflows");

/** Runs a command; its exit status and everything it printed. */
function exec(
  command: string,
  args: string[],
  cwd: string,
): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(command, args, {
    cwd,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
  });
  if (result.error) throw result.error;
  return result;
}

/** Every docs/ page the README links to is in the package, so its links work. */
function assertReadmeLinksPublished(files: string[]): void {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const linked = [...readme.matchAll(/\]\((docs\/[^)#\s]+)/g)].map(([, path]) =>
    path
  );
  assert.ok(linked.length > 0, "the README links to docs/");
  for (const path of linked) {
    assert.ok(
      files.includes(path),
      `${path}, linked from the README, is published`,
    );
  }
}

test("npm publish --dry-run takes the built package as it is, with what it needs", () => {
  const pkg = buildNpm();
  const { status, stdout, stderr } = exec(
    "npm",
    ["publish", "--dry-run", "--offline", "--json"],
    OUT_DIR,
  );
  assert.equal(status, 0, stderr);
  // The only warning a dry run may print is that nobody is logged in.
  const warnings = stderr.split("\n").filter((line) =>
    /^npm warn/i.test(line) && !/requires you to be logged in/.test(line)
  );
  assert.deepEqual(warnings, [], "npm corrected nothing in package.json");

  const report = JSON.parse(stdout);
  const packed = (report[pkg.name as string] ?? report) as {
    files: { path: string }[];
  };
  const files = packed.files.map((file) => file.path).sort();
  for (
    const file of [
      "package.json",
      "README.md",
      "LICENSE",
      "table.sql",
      "cjs/index.js",
      "cjs/index.d.ts",
      "esm/mod.js",
      "esm/mod.d.ts",
      "esm/src/cli.js",
      "esm/hono.js",
      "esm/hono.d.ts",
      "cjs/hono.js",
      "cjs/hono.d.ts",
    ]
  ) assert.ok(files.includes(file), `${file} is published`);
  assert.deepEqual(
    (pkg.exports as Record<string, unknown>)["./hono"],
    {
      import: { types: "./esm/hono.d.ts", default: "./esm/hono.js" },
      require: { types: "./cjs/hono.d.ts", default: "./cjs/hono.js" },
    },
    "the Hono adapter is the ./hono subpath, for import and require",
  );
  assert.deepEqual(
    files.filter((file) => !/^(esm|cjs|docs)\/|^[^/]+$/.test(file)),
    [],
    "nothing outside esm/, cjs/, docs/ and the top-level files",
  );
  assertReadmeLinksPublished(files);
  assert.deepEqual(
    files.filter((file) => /\.ts$/.test(file) && !/\.d\.ts$/.test(file)),
    [],
    "no TypeScript source",
  );

  assert.equal(
    (pkg.dependencies as Record<string, string>).postgres,
    postgresRange(readDenoJson()),
  );
  assert.deepEqual(pkg.bin, { [pkg.name as string]: "esm/src/cli.js" });
  const links = packageLinks(ROOT, process.env);
  assert.deepEqual(
    [pkg.repository, pkg.homepage, pkg.bugs],
    [links.repository, links.homepage, links.bugs],
    "links to the GitHub repository the build runs in, or none",
  );
});

test("deno publish --dry-run passes, publishing the module and nothing else", () => {
  const { status, stdout, stderr } = exec(
    "deno",
    ["publish", "--dry-run", "--allow-dirty"],
    ROOT,
  );
  const output = stdout + stderr;
  assert.equal(status, 0, output);
  const root = new URL(`file://${ROOT}`).href;
  const files = [...output.matchAll(/^\s+(file:\/\/\S+)/gm)]
    .map(([, url]) => url.slice(root.length));
  for (
    const file of [
      "mod.ts",
      "hono.ts",
      "src/store.ts",
      "src/hono.ts",
      "table.sql",
      "README.md",
      "LICENSE",
    ]
  ) assert.ok(files.includes(file), `${file} is published:\n${output}`);
  assert.deepEqual(
    files.filter((file) => /^(tests|scripts|\.github|npm)\//.test(file)),
    [],
  );
  assertReadmeLinksPublished(files);
});

test("the GitHub workflows pass action-validator", () => {
  const version = pinnedVersion(readDenoJson(), "@action-validator/cli");
  const files = readdirSync(WORKFLOWS).filter((name) => /\.ya?ml$/.test(name));
  assert.deepEqual(files.sort(), ["ci.yml", "release.yml"]);
  for (const name of files) {
    const { status, stdout, stderr } = exec("deno", [
      "run",
      "-A",
      "--quiet",
      `npm:@action-validator/cli@${version}`,
      join(WORKFLOWS, name),
    ], ROOT);
    assert.equal(status, 0, `${name}:\n${stdout}${stderr}`);
  }
});

test("CI runs .ci/run; a version tag runs it, then publishes to npm with provenance and to JSR", () => {
  const ci = readFileSync(join(WORKFLOWS, "ci.yml"), "utf8");
  const release = readFileSync(join(WORKFLOWS, "release.yml"), "utf8");
  assert.match(ci, /^ {2}push:\n {4}branches:/m);
  assert.match(ci, /^ {2}pull_request:/m);
  assert.match(ci, /^ {2}workflow_call:/m, "release.yml calls it");
  assert.match(ci, /run: bash \.ci\/run/);
  assert.match(release, /^ {2}push:\n {4}tags: \["v\*"\]/m);
  assert.match(release, /uses: \.\/\.github\/workflows\/ci\.yml/);
  assert.match(release, /run: deno task build\n/);
  assert.match(release, /run: npm publish --provenance --access public/);
  assert.match(release, /run: deno publish\n/);
  const publishers = release.split(/^ {2}(?=\w+:\n)/m)
    .filter((job) => /run: (npm|deno) publish/.test(job));
  assert.equal(publishers.length, 2);
  for (const job of publishers) {
    assert.match(job, /needs: \[ci, version\]/);
    assert.match(job, /id-token: write/);
  }
});
