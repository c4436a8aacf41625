/**
 * The npm package's `repository`, `homepage` and `bugs`, taken from the
 * GitHub repository the build runs in, or left out: never a placeholder.
 *
 * In GitHub Actions `GITHUB_REPOSITORY` names it (and `npm publish
 * --provenance` requires `repository.url` to match it); elsewhere the git
 * remote `origin`, when it is on GitHub.
 *
 * @module
 */
import { spawnSync } from "node:child_process";

/** The links, or an empty object when the repository is not known. */
export interface PackageLinks {
  repository?: { type: "git"; url: string };
  homepage?: string;
  bugs?: { url: string };
}

/**
 * `owner/name` of a GitHub remote URL (https, ssh or scp-like), or
 * `undefined` for anything else.
 *
 * @example
 * ```ts
 * import { githubRepository } from "./links.ts";
 * githubRepository("git@github.com:owner/name.git"); // => "owner/name"
 * ```
 */
export function githubRepository(url: string): string | undefined {
  const match =
    /^(?:git\+)?(?:https:\/\/|ssh:\/\/git@|git@)github\.com[/:]([\w.-]+)\/([\w.-]+?)(?:\.git)?\/?$/
      .exec(url.trim());
  return match ? `${match[1]}/${match[2]}` : undefined;
}

/**
 * The links for `owner/name` on GitHub, or none when `repository` is
 * `undefined` or not of that form.
 */
export function linksFor(repository: string | undefined): PackageLinks {
  if (!repository || !/^[\w.-]+\/[\w.-]+$/.test(repository)) return {};
  const web = `https://github.com/${repository}`;
  return {
    repository: { type: "git", url: `git+${web}.git` },
    homepage: `${web}#readme`,
    bugs: { url: `${web}/issues` },
  };
}

/**
 * The links for the repository at `root`: `GITHUB_REPOSITORY` when set,
 * else its `origin` remote if that is on GitHub, else none.
 */
export function packageLinks(
  root: string,
  env: Record<string, string | undefined>,
): PackageLinks {
  if (env.GITHUB_REPOSITORY) return linksFor(env.GITHUB_REPOSITORY);
  const origin = spawnSync("git", ["config", "--get", "remote.origin.url"], {
    cwd: root,
    encoding: "utf8",
  });
  return linksFor(
    origin.status === 0 ? githubRepository(origin.stdout) : undefined,
  );
}
