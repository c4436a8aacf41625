// Run by `deno task test:npm` under Node (and `test:bun` under Bun), against the installed
// package: the `./hono` subpath, as an app with Hono and no express-session gets it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import {
  CallTimeoutError,
  HonoSessionStore,
} from "connect-postgres-simple/hono";

const require = createRequire(import.meta.url);
/** The test project's node_modules, where npm installed the package. */
const MODULES = dirname(
  dirname(require.resolve("connect-postgres-simple/package.json")),
);

test("Hono: import resolves ./hono to the ES module, require to the CommonJS one", () => {
  assert.match(
    import.meta.resolve("connect-postgres-simple/hono"),
    /\/esm\/hono\.js$/,
  );
  assert.match(
    require.resolve("connect-postgres-simple/hono"),
    /[\\/]cjs[\\/]hono\.js$/,
  );
  assert.equal(typeof HonoSessionStore, "function");
  assert.equal(typeof CallTimeoutError, "function");
  const required = require("connect-postgres-simple/hono");
  assert.equal(typeof required.HonoSessionStore, "function");
  assert.equal(typeof required.CallTimeoutError, "function");
});

/** Runs `file` in `cwd` with this runtime; what it printed, or the failure. */
function runIn(cwd, args) {
  const result = spawnSync(process.execPath, args, {
    cwd,
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(
    result.status,
    0,
    `${args.join(" ")}:\n${result.stdout}${result.stderr}`,
  );
  return result.stdout;
}

/** A session round trip through the adapter, as an ES module or CommonJS. */
function roundTrip(format) {
  const load = format === "esm"
    ? `const { HonoSessionStore } = await import("connect-postgres-simple/hono");
const postgres = (await import("postgres")).default;`
    : `const { HonoSessionStore } = require("connect-postgres-simple/hono");
const postgresModule = require("postgres");
const postgres = postgresModule.default ?? postgresModule;`;
  return `${load}
const sql = postgres(process.env.DATABASE_URL, { onnotice() {}, max: 1 });
const tableName = "hono_entry_${format}_" + process.pid + "_" + Date.now();
const store = new HonoSessionStore({ postgres: sql, tableName, createTableIfMissing: true, pruneSessionInterval: false });
const session = { _data: { n: { value: 1, flash: false } }, _expire: null, _delete: false, _accessed: null };
try {
  await store.createSession("sid", session);
  const read = await store.getSessionById("sid");
  let expressSession = "not resolvable";
  try { require.resolve("express-session"); expressSession = "resolvable"; } catch {}
  console.log(JSON.stringify({ read, expressSession }));
} finally {
  await store.close();
  await sql.unsafe('DROP TABLE IF EXISTS "' + tableName + '"');
  await sql.end();
}
`;
}

test("Hono: ./hono works in an app without express-session, as an ES module and from CommonJS", () => {
  const app = mkdtempSync(join(tmpdir(), "cps-hono-app-"));
  try {
    // Copies, not links: a link resolves back into the test project, which has express-session.
    for (const name of ["connect-postgres-simple", "postgres"]) {
      cpSync(join(MODULES, name), join(app, "node_modules", name), {
        recursive: true,
        dereference: true,
      });
    }
    writeFileSync(
      join(app, "package.json"),
      JSON.stringify({ private: true, type: "module" }),
    );
    writeFileSync(
      join(app, "esm.mjs"),
      `import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
${roundTrip("esm")}`,
    );
    // An async function: CommonJS has no top-level await.
    writeFileSync(
      join(app, "cjs.cjs"),
      `(async () => {\n${roundTrip("cjs")}\n})().catch((error) => { console.error(error); process.exit(1); });\n`,
    );
    for (const file of ["esm.mjs", "cjs.cjs"]) {
      const { read, expressSession } = JSON.parse(runIn(app, [file]));
      assert.equal(expressSession, "not resolvable", file);
      assert.deepEqual(
        read,
        {
          _data: { n: { value: 1, flash: false } },
          _expire: null,
          _delete: false,
          _accessed: null,
        },
        file,
      );
    }
  } finally {
    rmSync(app, { recursive: true, force: true });
  }
});

test("Hono: the ./hono types need neither express-session nor @types/express-session", () => {
  const app = mkdtempSync(join(tmpdir(), "cps-hono-types-"));
  try {
    // postgres.js's types need Node's, and @types/node its own dependencies.
    const nodeTypes = require("@types/node/package.json");
    for (
      const name of [
        "connect-postgres-simple",
        "postgres",
        "@types/node",
        ...Object.keys(nodeTypes.dependencies ?? {}),
      ]
    ) {
      cpSync(join(MODULES, name), join(app, "node_modules", name), {
        recursive: true,
        dereference: true,
      });
    }
    writeFileSync(
      join(app, "package.json"),
      JSON.stringify({ private: true, type: "module" }),
    );
    const source = (module) =>
      `${module}
const store = new HonoSessionStore({ tableName: "hono_sessions", ttl: 60 });
export const read: Promise<{ _data: object } | null> = store.getSessionById("sid");
`;
    writeFileSync(
      join(app, "app.mts"),
      source(`import { HonoSessionStore } from "connect-postgres-simple/hono";`),
    );
    writeFileSync(
      join(app, "app.cts"),
      source(
        `import hono = require("connect-postgres-simple/hono");\nconst { HonoSessionStore } = hono;`,
      ),
    );
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          module: "nodenext",
          moduleResolution: "nodenext",
          target: "es2022",
          strict: true,
          noEmit: true,
          // Every declaration file is checked, so an import of express-session there fails
          // (no typeRoots: TypeScript also resolves imports there).
          skipLibCheck: false,
          types: ["node"],
        },
        files: ["app.mts", "app.cts"],
      }),
    );
    runIn(app, [join(MODULES, "typescript", "bin", "tsc"), "-p", "."]);
  } finally {
    rmSync(app, { recursive: true, force: true });
  }
});
