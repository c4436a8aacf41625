/**
 * What the server modules need from the operating system, on `node:` APIs
 * only (Deno and Node alike): running a command (as the postgres user when
 * root), files that appear whole, and the cache directory.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { chmod, mkdir, mkdtemp, rename, rm, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import process from "node:process";

/** The uid and gid a child runs as. */
export interface Ids {
  uid: number;
  gid: number;
}

/** How a command ended and what it printed. */
export interface Output {
  ok: boolean;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** True when this process runs as root (PostgreSQL then runs as `postgres`). */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/**
 * Spawn options that run a child as the postgres user (when root), from "/":
 * the caller's working directory may be closed to that user, which would
 * make the spawn itself fail.
 */
export function runAs(
  ids: Ids | undefined,
): { uid?: number; gid?: number; cwd?: string } {
  return ids ? { ...ids, cwd: "/" } : {};
}

/** Run a command to completion, collecting its output; never rejects. */
export function output(
  command: string,
  args: string[],
  options: { cwd?: string; uid?: number; gid?: number } = {},
): Promise<Output> {
  return new Promise((done) => {
    const child = spawn(command, args, {
      ...options,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => err.push(chunk));
    child.once(
      "error",
      (error) =>
        done({ ok: false, code: null, stdout: "", stderr: error.message }),
    );
    child.once("close", (code) =>
      done({
        ok: code === 0,
        code,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      }));
  });
}

/** Run a command to completion; its stdout, or an Error with its output. */
export async function run(
  command: string,
  args: string[],
  options: { cwd?: string; uid?: number; gid?: number } = {},
): Promise<string> {
  const result = await output(command, args, options);
  if (!result.ok) {
    throw new Error(
      `${command} ${args.join(" ")} failed (exit ${result.code}):\n` +
        `${result.stdout}${result.stderr}`.trimEnd(),
    );
  }
  return result.stdout;
}

/** True when `path` exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Fill `target` through a temporary sibling renamed into place, so readers
 * never see half of it.
 */
export async function atomicDir(
  target: string,
  fill: (tmp: string) => Promise<void>,
): Promise<void> {
  await mkdir(dirname(target), { recursive: true, mode: 0o755 });
  const tmp = await mkdtemp(join(dirname(target), ".partial-"));
  try {
    await chmod(tmp, 0o755);
    await fill(tmp);
    await rename(tmp, target).catch(async (error) => {
      if (!await exists(target)) throw error; // else another process won the race
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * Directory for cached clusters, npm-installed versions and copies of the
 * binaries; must be readable by the postgres user.
 */
export function cacheRoot(): string {
  const explicit = process.env.EMBEDDED_PG_CACHE;
  if (explicit) return resolve(explicit);
  if (isRoot()) return "/var/cache/connect-postgres-simple/embedded-postgres";
  const base = process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache");
  return join(base, "connect-postgres-simple", "embedded-postgres");
}
