/**
 * The npm build's source transforms (`scripts/npm/build.ts`). Deno only: the
 * build script is not part of the package. The package itself is tested as
 * installed by `deno task test:npm`.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { cjsDeclaration, rewriteSpecifiers } from "../scripts/npm/build.ts";
import { pinnedVersion } from "../scripts/_shared.ts";

test("relative .ts specifiers become .js in every import and export form", () => {
  const source = [
    'import { a } from "./a.ts";',
    'import type { B } from "../b.ts";',
    "import './side.ts';",
    'export { c } from "./dir/c.ts";',
    'export type { D } from "./d.ts";',
    'export * from "./e.ts";',
    'const f = await import("./f.ts");',
  ].join("\n");
  assert.equal(
    rewriteSpecifiers(source),
    [
      'import { a } from "./a.js";',
      'import type { B } from "../b.js";',
      "import './side.js';",
      'export { c } from "./dir/c.js";',
      'export type { D } from "./d.js";',
      'export * from "./e.js";',
      'const f = await import("./f.js");',
    ].join("\n"),
  );
});

test("bare, node: and npm: specifiers and other strings are left alone", () => {
  const source = [
    'import postgres from "postgres";',
    'import type { Store } from "express-session";',
    'import process from "node:process";',
    'import x from "npm:x.ts";',
    'const name = "./not-an-import.ts";',
    'import data from "./data.json" with { type: "json" };',
  ].join("\n");
  assert.equal(rewriteSpecifiers(source), source);
});

const MOD_DTS =
  `import type { PostgresStoreClass, SessionModule } from "./src/types.js";
export type { Callback, PostgresStoreOptions as Options, } from "./src/types.js";
export { CallTimeoutError } from "./src/calls.js";
/**
 * The factory.
 */
export declare function connectPostgresSimple(session: SessionModule): PostgresStoreClass;
export default connectPostgresSimple;
`;

test("the CommonJS declaration is export = of the factory, its types as namespace members", () => {
  const dts = cjsDeclaration(MOD_DTS);
  assert.match(
    dts,
    /^declare function connectPostgresSimple\(session: SessionModule\): PostgresStoreClass;$/m,
  );
  assert.match(dts, /^import \* as (Types\d+) from "\.\/src\/types\.js";$/m);
  assert.match(dts, /^ {2}export import Callback = Types\d+\.Callback;$/m);
  assert.match(
    dts,
    /^ {2}export import Options = Types\d+\.PostgresStoreOptions;$/m,
  );
  assert.match(dts, /^import \* as (Types\d+) from "\.\/src\/calls\.js";$/m);
  assert.match(
    dts,
    /^ {2}export import CallTimeoutError = Types\d+\.CallTimeoutError;$/m,
    "a class re-export is carried, as a value and a type",
  );
  assert.match(
    dts,
    /^ {2}export \{ factory as connectPostgresSimple, factory as default \};$/m,
  );
  assert.match(dts, /^export = connectPostgresSimple;\n$/m);
  assert.doesNotMatch(dts, /^export default/m);
});

test("an export the CommonJS declaration cannot carry stops the build", () => {
  assert.throws(
    () => cjsDeclaration(MOD_DTS + "export declare const VERSION: string;\n"),
    /does not carry.*VERSION/,
  );
  assert.throws(
    () => cjsDeclaration("export default connectPostgresSimple;\n"),
    /no connectPostgresSimple/,
  );
});

test("versions come from the npm: entries of deno.json's imports", () => {
  const deno = {
    version: "1.0.0",
    imports: {
      postgres: "npm:postgres@3.4.9",
      "@types/express-session": "npm:@types/express-session@1.19.0",
      express4: "npm:express@4.22.3",
      local: "./mod.ts",
    },
  };
  assert.equal(pinnedVersion(deno, "postgres"), "3.4.9");
  assert.equal(pinnedVersion(deno, "@types/express-session"), "1.19.0");
  assert.equal(pinnedVersion(deno, "express4"), "4.22.3");
  assert.throws(() => pinnedVersion(deno, "local"), /must pin/);
  assert.throws(() => pinnedVersion(deno, "missing"), /must pin/);
});
