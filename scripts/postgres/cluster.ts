/**
 * Getting a cluster ready to start: the postgres user (as root), binaries
 * that user can run, and a data directory initialised by copying a cluster
 * initdb made once for these binaries (kept in the cache directory), which
 * is quicker than running initdb each time.
 *
 * @module
 */
import {
  chmod,
  chown,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import {
  atomicDir,
  cacheRoot,
  exists,
  type Ids,
  output,
  run,
  runAs,
} from "./_system.ts";
import type { Binaries } from "./binaries.ts";

/** The password of the `postgres` role in every cluster this module initialises. */
export const POSTGRES_PASSWORD = "postgres";

/** Bump when initdb's arguments change, so cached clusters made with the old ones are not used. */
const TEMPLATE_FORMAT = "v1";

/**
 * Creates the data directory for the server's user and initialises it,
 * unless it already holds a cluster of the same major.
 *
 * @param bins The binaries the server runs.
 * @param dataDir The data directory (PGDATA).
 * @param version The server's version, e.g. `"18.4"`.
 * @param ids The postgres user's ids when running as root.
 */
export async function prepareDataDir(
  bins: Binaries,
  dataDir: string,
  version: string,
  ids: Ids | undefined,
): Promise<void> {
  const existing = await readFile(join(dataDir, "PG_VERSION"), "utf8").catch(
    () => undefined,
  );
  const major = version.split(".")[0];
  if (existing !== undefined) {
    if (existing.trim() !== major) {
      throw new Error(
        `${dataDir} holds a PostgreSQL ${existing.trim()} cluster, but this is PostgreSQL ` +
          `${version}: remove the directory, use another one, or set EMBEDDED_PG_VERSION=` +
          existing.trim(),
      );
    }
    if (ids) await chown(dataDir, ids.uid, ids.gid);
    return;
  }

  // Parents get the usual 0755 (a recursive mkdir would give them the data dir's 0700 and
  // close them to the postgres user); PostgreSQL wants the data dir itself at 0700.
  await mkdir(dirname(dataDir), { recursive: true });
  await mkdir(dataDir, { recursive: true });
  await chmod(dataDir, 0o700);
  if (ids) {
    await chown(dataDir, ids.uid, ids.gid);
    const probe = await output(
      "test",
      ["-w", dataDir, "-a", "-x", dataDir],
      runAs(ids),
    );
    if (!probe.ok) {
      throw new Error(
        `the postgres user cannot write to ${dataDir}: one of its parent directories is ` +
          `closed to other users; choose a data directory outside it`,
      );
    }
  }

  // initdb takes about 1 s, far more on a busy machine; copying a cluster it made once for
  // these binaries takes a tenth of that. Without a usable cache, run initdb in place.
  const template = await clusterTemplate(bins, ids).catch(() => undefined);
  if (template) {
    await run("cp", ["-a", `${template}/.`, dataDir]);
  } else {
    await initdb(bins.binDir, dataDir, ids);
  }
}

/** A cluster made once by initdb for a package version, kept in the cache to copy from. */
async function clusterTemplate(
  bins: Binaries,
  ids: Ids | undefined,
): Promise<string> {
  const dir = join(
    cacheRoot(),
    "clusters",
    `${bins.packageVersion}-${TEMPLATE_FORMAT}`,
  );
  const data = join(dir, "data");
  if (await exists(join(data, "global", "pg_control"))) return data;
  await atomicDir(dir, async (tmp) => {
    if (ids) await chown(tmp, ids.uid, ids.gid);
    await initdb(bins.binDir, join(tmp, "data"), ids);
  });
  return data;
}

async function initdb(
  binDir: string,
  dataDir: string,
  ids: Ids | undefined,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "cps-postgres-pw-"));
  try {
    const pwFile = join(dir, "password");
    await writeFile(pwFile, `${POSTGRES_PASSWORD}\n`);
    if (ids) {
      await chown(dir, ids.uid, ids.gid);
      await chown(pwFile, ids.uid, ids.gid);
    }
    const result = await output(join(binDir, "initdb"), [
      `--pgdata=${dataDir}`,
      "--username=postgres",
      `--pwfile=${pwFile}`,
      "--auth=scram-sha-256",
      "--encoding=UTF8",
      "--locale=C",
      "--no-sync",
    ], runAs(ids));
    if (!result.ok) {
      throw new Error(
        `initdb failed for ${dataDir}:\n${
          (result.stdout + result.stderr).trimEnd()
        }`,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The uid and gid of the `postgres` user, created if missing (PostgreSQL
 * refuses to run as root).
 *
 * @returns The user's ids.
 */
export async function postgresUser(): Promise<Ids> {
  const lookup = async (): Promise<Ids | undefined> => {
    const [uid, gid] = await Promise.all(
      ["-u", "-g"].map(async (flag) => {
        const out = await output("id", [flag, "postgres"]);
        return out.ok ? Number(out.stdout) : NaN;
      }),
    );
    return Number.isInteger(uid) && Number.isInteger(gid)
      ? { uid, gid }
      : undefined;
  };
  const found = await lookup();
  if (found) return found;
  const group = await output("getent", ["group", "postgres"]);
  const added = await output("useradd", [
    "--system",
    "--no-create-home",
    ...(group.ok ? ["-g", "postgres"] : ["-U"]),
    "postgres",
  ]);
  const created = await lookup();
  if (!created) {
    throw new Error(
      `running as root, PostgreSQL needs a "postgres" user and useradd failed: ` +
        added.stderr,
    );
  }
  return created;
}

/**
 * As root: the binaries must be reachable by the postgres user; they are
 * copied into the cache directory when they are not.
 *
 * @param bins The binaries to run.
 * @param ids The postgres user's ids.
 * @returns A directory of binaries that user can run.
 */
export async function reachableBinDir(
  bins: Binaries,
  ids: Ids,
): Promise<string> {
  const canRun = async (binDir: string): Promise<boolean> =>
    (await output("test", ["-x", join(binDir, "postgres")], runAs(ids))).ok;
  if (await canRun(bins.binDir)) return bins.binDir;
  const packageDir = dirname(dirname(bins.binDir));
  const target = join(cacheRoot(), `copy-${bins.packageVersion}`, "package");
  if (!await exists(join(target, "native", "bin", "postgres"))) {
    await atomicDir(dirname(target), async (tmp) => {
      await run("cp", ["-a", packageDir, join(tmp, "package")]);
    });
  }
  const binDir = join(target, "native", "bin");
  if (!await canRun(binDir)) {
    throw new Error(
      `the postgres user cannot run ${binDir}; set EMBEDDED_PG_CACHE to a readable dir`,
    );
  }
  return binDir;
}

/**
 * The server's version, from `postgres --version`.
 *
 * @param binDir The directory of the binaries.
 * @returns The version, e.g. `"18.4"`.
 */
export async function serverVersion(binDir: string): Promise<string> {
  const out = await output(join(binDir, "postgres"), ["--version"]);
  const match = out.stdout.match(/(\d+(?:\.\d+)?)/);
  if (!out.ok || !match) {
    throw new Error(`cannot run ${join(binDir, "postgres")}: ${out.stderr}`);
  }
  return match[1];
}
