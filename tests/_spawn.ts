/**
 * Runs a TypeScript file of this repository as a child process with the
 * runtime running the tests: `deno run -A file.ts` under Deno, `node file.js`
 * once compiled, so the same test works in both.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { extname } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** How a child process ended and what it printed. */
export interface ChildResult {
  /** The exit code, or `null` when a signal ended it. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** Milliseconds from spawn to exit. */
  millis: number;
}

/**
 * The file `relative` (written without extension) next to `base`, with
 * `base`'s own extension, so `.ts` stays `.ts` and compiled `.js` stays `.js`.
 */
export function sibling(relative: string, base: string): string {
  const here = fileURLToPath(base);
  return fileURLToPath(new URL(relative + extname(here), base));
}

/** A running child; see {@linkcode spawnScript}. */
export interface Child {
  /** Resolves once the child has printed a line `ready` on stdout. */
  ready: Promise<void>;
  /** Writes `line` and a newline to the child's stdin. */
  send(line: string): void;
  /** Closes the child's stdin. */
  end(): void;
  /** Resolves when the child has exited. */
  result: Promise<ChildResult>;
}

/**
 * Starts `script` with `args`; a child still running after `timeoutMs` is
 * killed (its result then has `code: null`). `onLine` sees each line the
 * child prints on stdout, as it comes.
 */
export function spawnScript(
  script: string,
  args: string[],
  { env = {}, timeoutMs = 60_000, onLine }: {
    env?: Record<string, string | undefined>;
    timeoutMs?: number;
    onLine?: (line: string) => void;
  } = {},
): Child {
  const command = "Deno" in globalThis
    ? ["run", "-A", "--quiet", script, ...args]
    : [script, ...args];
  const childEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...process.env, ...env })) {
    if (value !== undefined) childEnv[key] = value; // undefined unsets
  }
  const started = Date.now();
  const child = spawn(process.execPath, command, {
    env: childEnv,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  let markReady = () => {};
  const ready = new Promise<void>((resolve) => markReady = resolve);
  let seen = 0;
  child.stdout.setEncoding("utf8").on("data", (chunk) => {
    stdout += chunk;
    for (let end; onLine && (end = stdout.indexOf("\n", seen)) >= 0;) {
      onLine(stdout.slice(seen, end));
      seen = end + 1;
    }
    if (/^ready$/m.test(stdout)) markReady();
  });
  child.stderr.setEncoding("utf8").on("data", (chunk) => stderr += chunk);
  child.stdin.on("error", () => {}); // a child that exits early closes it
  const killer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const result = new Promise<ChildResult>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(killer);
      markReady();
      resolve({ code, stdout, stderr, millis: Date.now() - started });
    });
  });
  return {
    ready,
    send: (line) => child.stdin.write(`${line}\n`),
    end: () => child.stdin.end(),
    result,
  };
}

/** Runs `script` with `args` (stdin closed) and resolves when it exits. */
export function runScript(
  script: string,
  args: string[],
  options: {
    env?: Record<string, string | undefined>;
    timeoutMs?: number;
  } = {},
): Promise<ChildResult> {
  const child = spawnScript(script, args, options);
  child.end();
  return child.result;
}

/**
 * Starts `count` children of `script` and, once every one has printed
 * `ready`, sends each of them `go` at the same moment; resolves to their
 * results.
 */
export async function runTogether(
  count: number,
  script: string,
  args: string[],
  options: { timeoutMs?: number } = {},
): Promise<ChildResult[]> {
  const children = Array.from(
    { length: count },
    () => spawnScript(script, args, options),
  );
  await Promise.all(children.map((child) => child.ready));
  for (const child of children) child.send("go");
  for (const child of children) child.end();
  return await Promise.all(children.map((child) => child.result));
}
