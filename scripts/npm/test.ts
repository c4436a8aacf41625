/**
 * Tests the npm package as users get it: builds it, packs it with
 * `npm pack`, installs the tarball into a fresh Node project in a temporary
 * directory (with postgres.js at the lowest or the newest version its range
 * allows, as the only copy), and there:
 *
 * 1. type-checks `tests/npm/types/` with `tsc` (ESM, CommonJS
 *    `import = require`, esModuleInterop; strict, `module: nodenext`);
 * 2. compiles the store's test suite (`tests/*.ts` but `*.deno_test.ts`) to
 *    JavaScript, its `../mod.ts` and `../hono.ts` imports pointed at the
 *    installed package (`connect-postgres-simple`, `connect-postgres-simple/hono`),
 *    together with the modules of `scripts/postgres/` it imports (the
 *    throwaway server, on `node:` APIs, so a fault test runs under Node too;
 *    its binaries linked from the repository's `node_modules`);
 * 3. runs it with `node --test` (or `bun test`), together with the CommonJS
 *    and ESM entry checks in `tests/npm/`, on `DATABASE_URL`.
 *
 * ```sh
 * deno task test:npm   # starts a throwaway PostgreSQL unless DATABASE_URL is set
 * deno task test:npm -- --postgres=newest   # the newest postgres.js 3.x
 * deno task test:bun   # the suite under Bun (= test:npm -- --runtime=bun)
 * KEEP_NPM_PROJECT=1 deno task test:npm   # keep the temporary Node project
 * ```
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, posix } from "node:path";
import process from "node:process";
import {
  buildNpm,
  OUT_DIR,
  postgresRange,
  rewriteSpecifiers,
} from "./build.ts";
import { PACKAGE_PLATFORM, PINNED_PACKAGE_DIR } from "../postgres/binaries.ts";
import { capture, pinnedVersion, readDenoJson, ROOT, run } from "../_shared.ts";
import {
  checkPostgres,
  parseVariant,
  postgresSpec,
  testCommand,
  variantInstallArgs,
} from "./variants.ts";

const PACKAGE = "connect-postgres-simple";
const TESTS_DIR = join(ROOT, "tests");
const NPM_FIXTURES = join(TESTS_DIR, "npm");
/** Packages the type fixtures import, besides those the tests import. */
const FIXTURE_IMPORTS = [
  "express",
  "express-session",
  "postgres",
  "hono",
  "hono-sessions",
];
/**
 * The package's entry points as the tests import them from the repository
 * (`../mod.ts`), and as the compiled suite imports them from the package.
 */
const ENTRY_POINTS = new Map([
  ["mod.ts", PACKAGE],
  ["hono.ts", `${PACKAGE}/hono`],
]);
/**
 * Packages linked from the repository's own `node_modules` rather than
 * installed: the PostgreSQL binaries (60 MB) the fault tests run, which
 * Deno has already installed.
 */
const LINKED = new Map([[PACKAGE_PLATFORM, PINNED_PACKAGE_DIR]]);

/** What `npm pack --json` reports about the tarball. */
interface Packed {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
}

/** The package name of a bare specifier: `@a/b/c` → `@a/b`, `a/b` → `a`. */
function packageOf(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/** Bare module specifiers imported by `source` (no `node:`, no relative). */
function bareImports(source: string): string[] {
  const found = new Set<string>();
  for (
    const [, specifier] of source.matchAll(
      /(?:\bfrom|\bimport)\s*\(?\s*["']([^"'./][^"']*)["']/g,
    )
  ) {
    if (!specifier.startsWith("node:")) found.add(packageOf(specifier));
  }
  return [...found];
}

/**
 * Relative module specifiers in `from "..."`, `import "..."` and
 * `import("...")`.
 */
const RELATIVE_IMPORT =
  /(?:\bfrom|\bimport)\s*\(?\s*["'](\.{1,2}\/[^"']*)["']/g;
/**
 * Where the compiled suite may import from besides `tests/` and `../mod.ts`:
 * the throwaway PostgreSQL server, written on `node:` APIs for this.
 */
const SHARED_DIR = "scripts/postgres/";

/**
 * The suite's files and the modules they import, by path from the
 * repository root, with their Node-side text: `../mod.ts` → the package,
 * `.ts` specifiers → `.js`.
 */
function testSources(): Map<string, string> {
  const files = new Map<string, string>();
  const pending = readdirSync(TESTS_DIR)
    .filter((name) => name.endsWith(".ts") && !name.endsWith(".deno_test.ts"))
    .map((name) => `tests/${name}`);
  for (let file; (file = pending.pop()) !== undefined;) {
    if (files.has(file)) continue;
    const source = readFileSync(join(ROOT, file), "utf8");
    for (const [, specifier] of source.matchAll(RELATIVE_IMPORT)) {
      const target = posix.join(posix.dirname(file), specifier);
      if (ENTRY_POINTS.has(target) && file.startsWith("tests/")) continue;
      const inTests = /^tests\/[^/]+$/.test(target);
      if (!inTests && !target.startsWith(SHARED_DIR)) {
        throw new Error(
          `${file} imports ${specifier}: tests reach the store only through ../mod.ts or ../hono.ts ` +
            `(see tests/_helpers.ts), and a server through ${SHARED_DIR}server.ts`,
        );
      }
      pending.push(target);
    }
    files.set(
      file,
      rewriteSpecifiers(
        source.replace(
          /(["'])\.\.\/(mod|hono)\.ts\1/g,
          (_all, quote: string, name: string) =>
            `${quote}${ENTRY_POINTS.get(`${name}.ts`)}${quote}`,
        ),
      ),
    );
  }
  return files;
}

/**
 * npm install arguments for the packages the tests and fixtures import, at
 * the versions deno.json pins (an alias such as `express4` stays an alias),
 * with their `@types/` packages when deno.json names them.
 */
function dependencies(imports: string[]): string[] {
  const deno = readDenoJson();
  const specs = new Set<string>();
  for (const name of imports) {
    const spec = deno.imports[name];
    const match = spec && /^npm:((?:@[^/@]+\/)?[^@]+)@(.+)$/.exec(spec);
    if (!match) {
      throw new Error(`deno.json imports has no npm: entry "${name}"`);
    }
    const [, real, version] = match;
    specs.add(
      name === real ? `${real}@${version}` : `${name}@npm:${real}@${version}`,
    );
    if (deno.imports[`@types/${real}`]) {
      specs.add(`@types/${real}@${pinnedVersion(deno, `@types/${real}`)}`);
    }
  }
  const nodeMajor = capture("node", ["--version"], ROOT).trim()
    .replace(/^v(\d+).*$/s, "$1");
  specs.add(`@types/node@${nodeMajor}`);
  specs.add(`typescript@${pinnedVersion(deno, "typescript")}`);
  return [...specs];
}

/**
 * Whether a package's `exports["."]` points at a module with a `.d.ts` beside
 * it, which is where TypeScript finds the types of a package that names none
 * (hono-sessions).
 */
function entryDeclarations(dir: string, entry: unknown): boolean {
  const targets = typeof entry === "string"
    ? [entry]
    : Object.values(entry ?? {}).filter((t) => typeof t === "string");
  return targets.some((target) =>
    existsSync(join(dir, target.replace(/\.[cm]?js$/, ".d.ts")))
  );
}

/**
 * Declarations for imports Deno types on its own: an alias (`express4`)
 * gets its package's types, a package without types is `any`, as in Deno.
 */
function moduleShims(project: string, imports: string[]): string {
  const deno = readDenoJson();
  const lines: string[] = [];
  for (const name of imports) {
    const real = /^npm:((?:@[^/@]+\/)?[^@]+)@/.exec(deno.imports[name])![1];
    const dir = join(project, "node_modules", real);
    const manifest = JSON.parse(
      readFileSync(join(dir, "package.json"), "utf8"),
    );
    const typed = existsSync(join(project, "node_modules", "@types", real)) ||
      manifest.types || manifest.typings ||
      existsSync(join(dir, "index.d.ts")) ||
      entryDeclarations(dir, manifest.exports?.["."]);
    if (!typed) lines.push(`declare module "${name}";`);
    else if (name !== real) {
      lines.push(
        `declare module "${name}" {\n  export * from "${real}";\n  export { default } from "${real}";\n}`,
      );
    }
  }
  return lines.join("\n") + "\n";
}

/** Links the {@linkcode LINKED} packages into the project's `node_modules`. */
function linkPackages(project: string): void {
  for (const [name, dir] of LINKED) {
    const link = join(project, "node_modules", name);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(realpathSync(dir), link);
  }
}

function writeJson(path: string, value: unknown): void {
  writeFileSync(path, JSON.stringify(value, null, 2) + "\n");
}

/**
 * Compiles the suite into `<project>/dist/tests` (and the server modules it
 * imports into `<project>/dist/scripts/`); returns its test files.
 */
function compileTests(project: string, sources: Map<string, string>): string[] {
  for (const [path, text] of sources) {
    mkdirSync(dirname(join(project, path)), { recursive: true });
    writeFileSync(join(project, path), text);
  }
  const imports = [...new Set([...sources.values()].flatMap(bareImports))]
    .filter((name) => name !== PACKAGE);
  writeFileSync(
    join(project, "tests", "_modules.d.ts"),
    moduleShims(project, imports),
  );
  writeJson(join(project, "tsconfig.tests.json"), {
    compilerOptions: {
      module: "nodenext",
      moduleResolution: "nodenext",
      target: "es2022",
      types: ["node"],
      strict: true,
      skipLibCheck: true,
      rootDir: ".",
      outDir: "dist",
    },
    include: ["tests/*.ts", `${SHARED_DIR}*.ts`],
  });
  run(
    "node",
    ["node_modules/typescript/bin/tsc", "-p", "tsconfig.tests.json"],
    {
      cwd: project,
    },
  );
  // _helpers.ts reads ../table.sql: give it the one the package ships.
  copyFileSync(
    join(project, "node_modules", PACKAGE, "table.sql"),
    join(project, "dist", "table.sql"),
  );
  // Tests that run ../src/<file> as a script (the CLI) get the installed
  // package's compiled ESM source.
  symlinkSync(
    join(project, "node_modules", PACKAGE, "esm", "src"),
    join(project, "dist", "src"),
  );
  return [...sources.keys()]
    .filter((path) => path.startsWith("tests/") && path.endsWith("_test.ts"))
    .map((path) => join("dist", path.replace(/\.ts$/, ".js")));
}

/** Copies the CommonJS and ESM entry checks; returns their paths. */
function entryChecks(project: string): string[] {
  const dir = join(project, "dist", "npm");
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (const name of readdirSync(NPM_FIXTURES)) {
    if (!/\.(cjs|mjs)$/.test(name)) continue;
    copyFileSync(join(NPM_FIXTURES, name), join(dir, name));
    files.push(join("dist", "npm", name));
  }
  return files;
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

function main(): number {
  const started = performance.now();
  const variant = parseVariant(process.argv.slice(2));
  if (!process.env.DATABASE_URL) {
    throw new Error(
      "DATABASE_URL is not set: run `deno task test:npm`, which starts a throwaway PostgreSQL",
    );
  }
  const sources = testSources();
  buildNpm();
  const range = postgresRange(readDenoJson());
  const postgres = postgresSpec(range, variant);
  const project = mkdtempSync(join(tmpdir(), "cps-npm-"));
  try {
    const [packed] = JSON.parse(
      capture(
        "npm",
        ["pack", "--json", "--pack-destination", project],
        OUT_DIR,
      ),
    ) as Packed[];
    console.log(
      `test:npm: ${packed.filename}: ${kib(packed.size)} packed, ${
        kib(packed.unpackedSize)
      } unpacked, ${packed.entryCount} files`,
    );

    writeJson(join(project, "package.json"), {
      name: "connect-postgres-simple-npm-check",
      private: true,
      type: "module",
      overrides: { postgres },
    });
    const imports = [
      ...new Set([
        ...FIXTURE_IMPORTS,
        ...[...sources.values()].flatMap(bareImports),
      ]),
    ].filter((name) => name !== PACKAGE);
    run("npm", [
      "install",
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
      `./${packed.filename}`,
      ...variantInstallArgs(
        dependencies(imports.filter((name) => !LINKED.has(name))),
        postgres,
        variant,
      ),
    ], { cwd: project });
    linkPackages(project);
    console.log(
      `test:npm: postgres.js ${
        checkPostgres(project, PACKAGE, postgres, variant)
      } (the ${variant.postgres} ${range} allows)`,
    );

    console.log("test:npm: tsc on tests/npm/types (ESM, CJS, esModuleInterop)");
    const types = join(project, "types");
    mkdirSync(types);
    for (const name of readdirSync(join(NPM_FIXTURES, "types"))) {
      copyFileSync(join(NPM_FIXTURES, "types", name), join(types, name));
    }
    run("node", ["node_modules/typescript/bin/tsc", "-p", "types"], {
      cwd: project,
    });

    console.log("test:npm: compiling the suite against the installed package");
    const files = [...compileTests(project, sources), ...entryChecks(project)];
    const [runner, args] = testCommand(project, variant, files);
    console.log(`test:npm: ${variant.runtime}, ${files.length} files`);
    const result = spawnSync(runner, args, { cwd: project, stdio: "inherit" });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(
      `test:npm: ${
        result.status === 0 ? "passed" : "FAILED"
      } in ${seconds} s (tarball ${kib(packed.size)} packed, ${
        kib(packed.unpackedSize)
      } unpacked)`,
    );
    return result.status ?? 1;
  } finally {
    if (process.env.KEEP_NPM_PROJECT) {
      console.log(`test:npm: kept ${project}`);
    } else rmSync(project, { recursive: true, force: true });
  }
}

if (import.meta.main) process.exit(main());
