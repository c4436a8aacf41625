// The demo on Node, from the built npm package, through its CommonJS entry:
// `require("connect-postgres-simple")` is the factory, as with connect-pg-simple.
// `deno task demo:node` copies this file next to the bundled app
// (`demo_app.cjs`, from scripts/demo/run.ts) in .tmp/demo-node, where the
// package is installed from its tarball, and runs it there with node.
"use strict";
const process = require("node:process");
const connectPostgresSimple = require("connect-postgres-simple");
const { runDemo } = require("./demo_app.cjs");

runDemo(connectPostgresSimple, process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
