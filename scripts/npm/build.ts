/**
 * Builds the npm package into `npm/` from the Deno source, doing what dnt
 * would do (dnt lives on JSR, which our build machines cannot reach):
 *
 * 1. copies `mod.ts`, `hono.ts` and `src/` into a staging directory,
 *    rewriting relative `.ts` import specifiers to `.js` (bare names such as
 *    `postgres` and `express-session` stay bare, as npm resolves them);
 * 2. compiles them twice with the TypeScript compiler from npm: ESM into
 *    `npm/esm`, CommonJS into `npm/cjs`, each with its `.d.ts` files;
 * 3. writes the CommonJS entry, whose `module.exports` is the factory itself
 *    (`require("connect-postgres-simple")(session)`), and its `export =`
 *    declaration;
 * 4. writes `package.json` and copies `README.md`, `LICENSE`, `table.sql`
 *    and `docs/` (the README links there).
 *
 * ```sh
 * deno task build   # = deno run -A scripts/npm/build.ts
 * ```
 *
 * @module
 */
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import {
  type DenoJson,
  pinnedVersion,
  readDenoJson,
  ROOT,
  run,
} from "../_shared.ts";
import { packageLinks } from "./links.ts";

/** Where the package is written. */
export const OUT_DIR: string = join(ROOT, "npm");
const STAGING_DIR = join(ROOT, ".tmp", "npm-build");
/** The command-line tool; it becomes the package's `bin`. */
const CLI_SOURCE = "src/cli.ts";
const PACKAGE_NAME = "connect-postgres-simple";
/** The oldest Node the package supports (`engines`); the source compiles against its types. */
const NODE_MAJOR = 18;
const NODE_TYPES = `${NODE_MAJOR}`;

/**
 * Rewrites relative `.ts` module specifiers to `.js`, in `from "..."`,
 * `import "..."` and `import("...")`; other specifiers are left alone.
 *
 * @example
 * ```ts
 * import { rewriteSpecifiers } from "./build.ts";
 * rewriteSpecifiers('import { a } from "./a.ts";'); // => 'import { a } from "./a.js";'
 * ```
 */
export function rewriteSpecifiers(source: string): string {
  return source.replace(
    /((?:\bfrom|\bimport)\s*\(?\s*)(["'])(\.{1,2}\/[^"']*?)\.ts\2/g,
    (_all, before: string, quote: string, path: string) =>
      `${before}${quote}${path}.js${quote}`,
  );
}

/**
 * The package's entry points besides `src/`: `mod.ts` (`.`) and `hono.ts`
 * (`./hono`, which loads no express-session).
 */
const ENTRY_FILES = ["mod.ts", "hono.ts"];

/** The files that make up the module: the entry points and `src/**.ts`. */
function sourceFiles(): string[] {
  const files = [...ENTRY_FILES];
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".ts") && !/_test\.ts$/.test(entry.name)) {
        files.push(path);
      }
    }
  };
  walk("src");
  return files;
}

function stage(): string[] {
  rmSync(STAGING_DIR, { recursive: true, force: true });
  const files = sourceFiles();
  for (const file of files) {
    const target = join(STAGING_DIR, file);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(
      target,
      rewriteSpecifiers(readFileSync(join(ROOT, file), "utf8")),
    );
  }
  return files;
}

/**
 * Gives the staging directory its own Deno config and `node_modules`: the
 * compiler and the packages whose types the source needs, at the versions
 * the repository's deno.json pins, plus `@types/node` for the oldest Node
 * the package supports (kept out of the repository's import map, where it
 * would change how Deno type-checks `node:` modules).
 */
function prepareStaging(deno: DenoJson): void {
  const imports: Record<string, string> = {
    "@types/node": `npm:@types/node@${NODE_TYPES}`,
  };
  for (
    const name of [
      "typescript",
      "postgres",
      "express-session",
      "@types/express-session",
    ]
  ) imports[name] = `npm:${name}@${pinnedVersion(deno, name)}`;
  writeFileSync(
    join(STAGING_DIR, "deno.json"),
    JSON.stringify({ nodeModulesDir: "auto", lock: false, imports }),
  );
  run(process.execPath, ["install", "--quiet"], { cwd: STAGING_DIR });
}

/**
 * Runs `tsc` from the npm package `typescript` at the version deno.json pins
 * (7.x is the native compiler; its npm launcher runs under Deno), in the
 * staging directory.
 */
function tsc(args: string[]): void {
  const version = pinnedVersion(readDenoJson(), "typescript");
  run(
    process.execPath,
    ["run", "-A", "--quiet", `npm:typescript@${version}/tsc`, ...args],
    { cwd: STAGING_DIR },
  );
}

function compile(format: "esm" | "cjs", files: string[]): void {
  writeFileSync(
    join(STAGING_DIR, "package.json"),
    JSON.stringify({ type: format === "esm" ? "module" : "commonjs" }),
  );
  const config = join(STAGING_DIR, `tsconfig.${format}.json`);
  writeFileSync(
    config,
    JSON.stringify(
      {
        compilerOptions: {
          module: "nodenext",
          moduleResolution: "nodenext",
          target: "es2022",
          lib: ["es2022"],
          types: ["node"],
          strict: true,
          declaration: true,
          sourceMap: false,
          removeComments: false,
          skipLibCheck: true,
          rootDir: ".",
          outDir: join(OUT_DIR, format),
          newLine: "lf",
        },
        files,
      },
      null,
      2,
    ),
  );
  tsc(["-p", config]);
}

/**
 * The CommonJS entry: `module.exports` is the factory, with the named
 * exports attached, so `require(...)(session)`,
 * `require(...).connectPostgresSimple(session)` and `require(...).default`
 * all work.
 */
const CJS_ENTRY = `"use strict";
const mod = require("./mod.js");
const connectPostgresSimple = mod.connectPostgresSimple;
for (const name of Object.keys(mod)) {
  if (name !== "__esModule") connectPostgresSimple[name] = mod[name];
}
connectPostgresSimple.default = connectPostgresSimple;
module.exports = connectPostgresSimple;
`;

/**
 * The `export =` declaration of the CommonJS entry, made from the emitted
 * `cjs/mod.d.ts`: the factory's signature becomes a function merged with a
 * namespace that carries `default`, `connectPostgresSimple` and every other
 * export (types, and classes such as `CallTimeoutError`), so `import x = require(...)`, `x.PostgresStoreOptions` and
 * `import { type PostgresStoreOptions } from` all type-check.
 *
 * @throws {Error} when `mod.ts` gains an export of a kind not carried over,
 * so a new export cannot silently go missing from the CommonJS types.
 */
export function cjsDeclaration(modDts: string): string {
  const statements = modDts.replace(/\/\*\*[\s\S]*?\*\//g, "")
    .split(/;\s*\n/).map((s) => s.trim()).filter(Boolean);
  const imports: string[] = [];
  const aliases: string[] = [];
  let signature: string | undefined;
  for (const statement of statements) {
    // `export type { A } from` and `export { B } from` (a class, such as
    // CallTimeoutError) both become `export import` aliases in the namespace.
    const typeExport = /^export (?:type )?\{([^}]*)\} from (["'][^"']+["'])$/
      .exec(statement);
    const fn = /^export declare function connectPostgresSimple(\([\s\S]*)$/
      .exec(statement);
    if (statement.startsWith("import ")) {
      imports.push(`${statement};`);
    } else if (typeExport) {
      const ns = `Types${imports.length}`;
      imports.push(`import * as ${ns} from ${typeExport[2]};`);
      for (const part of typeExport[1].split(",")) {
        const [name, alias = name] = part.trim().split(/\s+as\s+/);
        if (name) aliases.push(`  export import ${alias} = ${ns}.${name};`);
      }
    } else if (fn) {
      signature = fn[1];
    } else if (statement !== "export default connectPostgresSimple") {
      throw new Error(
        `npm build: mod.ts has an export the CommonJS entry does not carry; teach cjsDeclaration: ${statement}`,
      );
    }
  }
  if (!signature) {
    throw new Error("npm build: mod.d.ts declares no connectPostgresSimple");
  }
  return `${imports.join("\n")}
import { connectPostgresSimple as factory } from "./mod.js";

/**
 * Makes the store class from the express-session module:
 * \`require("connect-postgres-simple")(session)\`. The same function is
 * also \`.connectPostgresSimple\` and \`.default\`.
 */
declare function connectPostgresSimple${signature};
declare namespace connectPostgresSimple {
${aliases.join("\n")}
  export { factory as connectPostgresSimple, factory as default };
}
export = connectPostgresSimple;
`;
}

/**
 * The `bin` entry for the command-line tool when `src/cli.ts` exists (its
 * compiled ESM file gets a Node shebang), else `undefined`.
 */
function cliBin(): Record<string, string> | undefined {
  if (!existsSync(join(ROOT, CLI_SOURCE))) return undefined;
  const file = join(OUT_DIR, "esm", CLI_SOURCE.replace(/\.ts$/, ".js"));
  const code = readFileSync(file, "utf8").replace(/^#!.*\n/, "");
  writeFileSync(file, `#!/usr/bin/env node\n${code}`);
  chmodSync(file, 0o755);
  // No "./": npm publish rewrites a bin path that has one, with a warning.
  return { [PACKAGE_NAME]: `esm/${CLI_SOURCE.replace(/\.ts$/, ".js")}` };
}

/**
 * The `postgres` range the package accepts: every 3.x from the version
 * deno.json pins (the lowest tested) on, e.g. `^3.4.9`.
 */
export function postgresRange(deno: DenoJson): string {
  return `^${pinnedVersion(deno, "postgres")}`;
}

/** The npm `package.json`. */
function packageJson(deno: DenoJson): Record<string, unknown> {
  const bin = cliBin();
  return {
    name: PACKAGE_NAME,
    version: deno.version,
    description:
      "A PostgreSQL session store for express-session, @fastify/session and hono-sessions on postgres.js: a typed, faster drop-in for connect-pg-simple",
    license: "MIT",
    keywords: [
      "express-session",
      "session",
      "store",
      "postgres",
      "postgresql",
      "connect-pg-simple",
      "express",
      "fastify",
      "hono",
      "hono-sessions",
    ],
    ...packageLinks(ROOT, process.env),
    type: "module",
    main: "./cjs/index.js",
    module: "./esm/mod.js",
    types: "./cjs/index.d.ts",
    exports: {
      ".": {
        import: { types: "./esm/mod.d.ts", default: "./esm/mod.js" },
        require: { types: "./cjs/index.d.ts", default: "./cjs/index.js" },
      },
      // The Hono adapter: plain ES and CommonJS modules, no express-session.
      "./hono": {
        import: { types: "./esm/hono.d.ts", default: "./esm/hono.js" },
        require: { types: "./cjs/hono.d.ts", default: "./cjs/hono.js" },
      },
      "./table.sql": "./table.sql",
      "./package.json": "./package.json",
    },
    ...(bin ? { bin } : {}),
    files: ["esm/", "cjs/", "table.sql", "docs/"],
    engines: { node: `>=${NODE_MAJOR}` },
    sideEffects: false,
    // A range, so an app that has postgres.js 3.x already shares one copy.
    dependencies: { postgres: postgresRange(deno) },
    peerDependencies: {
      "@types/express-session": ">=1.17.0",
    },
    peerDependenciesMeta: {
      "@types/express-session": { optional: true },
    },
  };
}

/** Builds the package into `npm/`; returns its `package.json`. */
export function buildNpm(): Record<string, unknown> {
  const deno = readDenoJson();
  rmSync(OUT_DIR, { recursive: true, force: true });
  const files = stage();
  prepareStaging(deno);
  compile("esm", files);
  // The command-line tool is an ES module (`bin`), never required.
  compile("cjs", files.filter((file) => file !== CLI_SOURCE));
  writeFileSync(
    join(OUT_DIR, "cjs", "package.json"),
    JSON.stringify({ type: "commonjs" }) + "\n",
  );
  writeFileSync(join(OUT_DIR, "cjs", "index.js"), CJS_ENTRY);
  writeFileSync(
    join(OUT_DIR, "cjs", "index.d.ts"),
    cjsDeclaration(readFileSync(join(OUT_DIR, "cjs", "mod.d.ts"), "utf8")),
  );
  const pkg = packageJson(deno);
  writeFileSync(
    join(OUT_DIR, "package.json"),
    JSON.stringify(pkg, null, 2) + "\n",
  );
  for (const file of ["README.md", "LICENSE", "table.sql"]) {
    copyFileSync(join(ROOT, file), join(OUT_DIR, file));
  }
  // The README links into docs/: the package carries them, so the links work.
  cpSync(join(ROOT, "docs"), join(OUT_DIR, "docs"), { recursive: true });
  rmSync(STAGING_DIR, { recursive: true, force: true });
  return pkg;
}

if (import.meta.main) {
  const pkg = buildNpm();
  console.log(`npm build: wrote ${pkg.name}@${pkg.version} to npm/`);
}
