/**
 * A throwaway pg_auto_failover formation: a monitor, a primary and a
 * synchronous secondary, all on 127.0.0.1 on free ports, in a temporary
 * directory, run as the `postgres` user from Debian's packages
 * (`postgresql-15-auto-failover`, `pg-auto-failover-cli`). Trust
 * authentication on loopback, `fsync=off`.
 *
 * `stop()` ends what `start()` started (the `pg_autoctl run` services it
 * spawned, and with them their PostgreSQL servers) and removes the directory;
 * it touches no other server.
 *
 * @example
 * ```ts ignore
 * const formation = new Formation();
 * try {
 *   await formation.start();
 *   console.log(formation.url); // postgres://h:p1,h:p2/postgres?target_session_attrs=read-write
 *   await formation.failover();
 * } finally {
 *   await formation.stop();
 * }
 * ```
 *
 * @module
 */
import postgres from "postgres";
import { join } from "node:path";
import { findTools, PgAutoctl, type Service, tail } from "./pg_autoctl.ts";
import { freePort } from "../postgres/server.ts";
import { epochMs } from "./protocol.ts";

/** The PostgreSQL settings added to every server: speed over durability. */
const FAST_SETTINGS =
  "\n# connect-postgres-simple failover test\nfsync = off\n";
const STEP_TIMEOUT_MS = 90_000;
const POLL_MS = 100;

/** A node (PostgreSQL server) of the formation. */
export interface FormationNode {
  name: string;
  port: number;
  dataDir: string;
  /** A direct URL to this node, user and database `postgres`. */
  url: string;
}

/** One node's state as the monitor reports it. */
export interface NodeState {
  name: string;
  port: number;
  /** The state the node's keeper last reported (`primary`, `draining`, ...). */
  current: string;
  /** The state the monitor assigned to it. */
  assigned: string;
}

/** A change of the formation's states, seen by polling the monitor. */
export interface StateChange {
  /** Epoch milliseconds ({@linkcode epochMs}). */
  at: number;
  states: NodeState[];
}

/** What one failover took, as the monitor saw it. */
export interface FailoverRecord {
  from: string;
  to: string;
  /** Epoch ms when `pg_autoctl perform failover` was started. */
  startedAt: number;
  /** Epoch ms when the formation was healthy again (primary + secondary in sync). */
  healthyAt: number;
  /** Every change of states from the start until healthy. */
  changes: StateChange[];
}

/** A monitor, a primary and a synchronous secondary; see the module doc. */
export class Formation {
  /** The formation's temporary directory (set by `start()`). */
  dir = "";
  /** The monitor's URL (set by `start()`). */
  monitorUrl = "";
  /** The two PostgreSQL nodes, `node1` first (set by `start()`). */
  nodes: FormationNode[] = [];
  readonly #keep: boolean;
  readonly #services: { dataDir: string; service: Service }[] = [];
  #autoctl: PgAutoctl | undefined;
  #pgCtl = "pg_ctl";
  #monitor: ReturnType<typeof postgres> | undefined;
  #stopping: Promise<void> | undefined;

  /** @param options `keep`: leave the directory (logs, data) in place on stop. */
  constructor(options: { keep?: boolean } = {}) {
    this.#keep = options.keep ?? false;
  }

  /**
   * The multi-host URL pg_auto_failover gives applications (`pg_autoctl show
   * uri`), without its `sslmode`: the nodes in order, read-write wanted.
   */
  get url(): string {
    const hosts = this.nodes.map((n) => `127.0.0.1:${n.port}`).join(",");
    return `postgres://postgres@${hosts}/postgres?target_session_attrs=read-write`;
  }

  /**
   * Creates the monitor and both nodes and waits until the formation is
   * healthy. On failure, what was started is left for `stop()`.
   */
  async start(): Promise<void> {
    const tools = await findTools();
    this.#pgCtl = tools.pgCtl;
    this.dir = await Deno.makeTempDir({ prefix: "cps-failover-" });
    const autoctl = this.#autoctl = new PgAutoctl(this.dir);
    await autoctl.prepare();

    const monitorDir = join(this.dir, "monitor");
    const monitorPort = await freePort();
    await autoctl.run([
      "create",
      "monitor",
      "--pgdata",
      monitorDir,
      "--pgport",
      String(monitorPort),
      "--hostname",
      "127.0.0.1",
      "--auth",
      "trust",
      "--no-ssl",
      "--pgctl",
      tools.pgCtl,
    ], this.#log("monitor-create"));
    // The monitor listens on every interface unless told otherwise.
    await autoctl.run([
      "config",
      "set",
      "--pgdata",
      monitorDir,
      "postgresql.listen_addresses",
      "127.0.0.1",
    ], this.#log("monitor-create"));
    await this.#startService(monitorDir, "monitor");
    this.monitorUrl =
      `postgres://autoctl_node@127.0.0.1:${monitorPort}/pg_auto_failover?sslmode=disable`;
    this.#monitor = postgres(this.monitorUrl, {
      max: 1,
      onnotice: () => {},
      connect_timeout: 5,
      backoff: () => 0.1,
    });
    await this.#until("the monitor accepts connections", async () => {
      await this.#monitor!`select 1`;
      return true;
    });

    for (const name of ["node1", "node2"]) {
      const node: FormationNode = {
        name,
        port: await freePort(),
        dataDir: join(this.dir, name),
        url: "",
      };
      node.url = `postgres://postgres@127.0.0.1:${node.port}/postgres`;
      await autoctl.run([
        "create",
        "postgres",
        "--pgdata",
        node.dataDir,
        "--pgport",
        String(node.port),
        "--listen",
        "127.0.0.1",
        "--hostname",
        "127.0.0.1",
        "--name",
        name,
        "--dbname",
        "postgres",
        "--auth",
        "trust",
        "--no-ssl",
        "--pgctl",
        tools.pgCtl,
        "--monitor",
        this.monitorUrl,
      ], this.#log(`${name}-create`));
      this.nodes.push(node);
      await this.#startService(node.dataDir, name);
      if (name === "node1") {
        await this.#until("node1 runs as a single primary", async () => {
          const [state] = await this.states();
          return state?.current === "single" && state.assigned === "single";
        });
      }
    }
    await this.waitHealthy();
  }

  /** The nodes' states, from the monitor, `node1` first. */
  async states(): Promise<NodeState[]> {
    const rows = await this.#monitor!<NodeState[]>`
      select nodename as name, nodeport as port,
             reportedstate::text as current, goalstate::text as assigned
        from pgautofailover.node order by nodeid`;
    return rows.map((r) => ({ ...r }));
  }

  /**
   * Waits until one node is `primary` and the other `secondary` (reported and
   * assigned), the secondary streaming in synchronous mode.
   *
   * @returns The primary and the secondary.
   * @throws {Error} after `timeoutMs`, with the last states seen.
   */
  async waitHealthy(
    timeoutMs = STEP_TIMEOUT_MS,
    onChange?: (states: NodeState[]) => void,
  ): Promise<{ primary: FormationNode; secondary: FormationNode }> {
    let found: { primary: FormationNode; secondary: FormationNode } | undefined;
    let last = "";
    await this.#until(
      "the formation is healthy (primary + synchronous secondary)",
      async () => {
        const states = await this.states();
        const seen = JSON.stringify(states);
        if (seen !== last) {
          last = seen;
          onChange?.(states);
        }
        const primary = states.find((s) =>
          s.current === "primary" && s.assigned === "primary"
        );
        const secondary = states.find((s) =>
          s.current === "secondary" && s.assigned === "secondary"
        );
        if (!primary || !secondary || states.length !== 2) return false;
        const node = this.#node(primary.name);
        const sql = postgres(node.url, {
          max: 1,
          onnotice: () => {},
          connect_timeout: 5,
        });
        try {
          const rows = await sql<{ sync_state: string }[]>`
          select sync_state from pg_stat_replication`;
          if (
            !rows.some((r) =>
              r.sync_state === "sync" || r.sync_state === "quorum"
            )
          ) {
            return false;
          }
        } finally {
          await sql.end({ timeout: 1 });
        }
        found = { primary: node, secondary: this.#node(secondary.name) };
        return true;
      },
      timeoutMs,
      () => `last states: ${last}`,
    );
    return found!;
  }

  /**
   * Runs `pg_autoctl perform failover` and waits until the formation is
   * healthy again with the other node as primary, recording every change of
   * states on the way.
   */
  async failover(timeoutMs = STEP_TIMEOUT_MS): Promise<FailoverRecord> {
    const before = await this.waitHealthy(timeoutMs);
    const changes: StateChange[] = [];
    const startedAt = epochMs();
    const perform = this.#autoctl!.run(
      [
        "perform",
        "failover",
        "--pgdata",
        join(this.dir, "monitor"),
        "--wait",
        String(Math.ceil(timeoutMs / 1000)),
      ],
      this.#log("perform-failover"),
      timeoutMs + 10_000,
    );
    let performError: unknown;
    perform.catch((error) => performError = error);
    const after = await this.#untilHealthyWithNewPrimary(
      before.primary.name,
      changes,
      timeoutMs,
      () => performError,
    );
    const healthyAt = epochMs();
    await perform;
    return {
      from: before.primary.name,
      to: after.primary.name,
      startedAt,
      healthyAt,
      changes,
    };
  }

  async #untilHealthyWithNewPrimary(
    oldPrimary: string,
    changes: StateChange[],
    timeoutMs: number,
    failed: () => unknown,
  ): Promise<{ primary: FormationNode; secondary: FormationNode }> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const error = failed();
      if (error) throw error;
      const left = deadline - performance.now();
      const healthy = await this.waitHealthy(
        Math.max(left, 1),
        (states) => {
          const seen = JSON.stringify(states);
          if (seen !== JSON.stringify(changes.at(-1)?.states)) {
            changes.push({ at: epochMs(), states });
          }
        },
      );
      if (healthy.primary.name !== oldPrimary) return healthy;
      if (performance.now() > deadline) {
        throw new Error(
          `the failover did not start within ${timeoutMs / 1000} s`,
        );
      }
      await sleep(POLL_MS);
    }
  }

  /** Stops what `start()` started and removes the directory; idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    await this.#monitor?.end({ timeout: 1 }).catch(() => {});
    // Nodes first, the monitor last, each service asked to stop (fast shutdown of its
    // PostgreSQL), then forced if it lingers.
    // A service whose runuser died may have left its pg_autoctl running: every one is
    // asked to stop through its pid file.
    for (const { dataDir, service } of [...this.#services].reverse()) {
      await this.#autoctl!.run(
        ["stop", "--pgdata", dataDir],
        this.#log("stop"),
        15_000,
      )
        .catch(() => service.kill("SIGTERM"));
      if (!service.exited() && !await exitsWithin(service, 30_000)) {
        await this.#autoctl!.run(
          ["stop", "--pgdata", dataDir, "--immediate"],
          this.#log("stop"),
          15_000,
        ).catch(() => {});
        if (!await exitsWithin(service, 10_000)) service.kill("SIGKILL");
      }
      await service.logged;
    }
    // A server left behind in one of this formation's own directories (a `pg_autoctl
    // create` cut short, a service killed): stopped by its data directory.
    for (const name of ["monitor", "node1", "node2"]) {
      const dataDir = join(this.dir, name);
      if (!this.dir || !await exists(join(dataDir, "postmaster.pid"))) continue;
      await this.#autoctl!.run(
        ["-D", dataDir, "-m", "immediate", "-w", "stop"],
        this.#log("stop"),
        15_000,
        this.#pgCtl,
      ).catch(() => {});
    }
    if (this.dir && !this.#keep) {
      await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    }
  }

  async #startService(dataDir: string, name: string): Promise<void> {
    await Deno.writeTextFile(join(dataDir, "postgresql.conf"), FAST_SETTINGS, {
      append: true,
    });
    const service = this.#autoctl!.spawn(
      ["run", "--pgdata", dataDir],
      this.#log(name),
    );
    this.#services.push({ dataDir, service });
    service.status.then(() => {
      if (!this.#stopping) {
        console.error(
          `failover: pg_autoctl run for ${name} exited early; see ${
            this.#log(name)
          }`,
        );
      }
    });
  }

  #node(name: string): FormationNode {
    const node = this.nodes.find((n) => n.name === name);
    if (!node) throw new Error(`the monitor reports an unknown node ${name}`);
    return node;
  }

  #log(name: string): string {
    return join(this.dir, `${name}.log`);
  }

  /** Polls `check` until it returns true; errors count as false. */
  async #until(
    what: string,
    check: () => Promise<boolean>,
    timeoutMs = STEP_TIMEOUT_MS,
    detail: () => string = () => "",
  ): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    let lastError: unknown;
    for (;;) {
      try {
        if (await check()) return;
      } catch (error) {
        lastError = error;
      }
      if (performance.now() > deadline) {
        const logs = await Promise.all(
          ["monitor", ...this.nodes.map((n) => n.name)].map(async (name) =>
            `--- ${name}.log\n${await tail(this.#log(name), 10)}`
          ),
        );
        throw new Error(
          `failover: timed out after ${
            timeoutMs / 1000
          } s waiting until ${what}` +
            (lastError
              ? ` (last error: ${(lastError as Error).message})`
              : "") +
            (detail() ? `; ${detail()}` : "") + `\n${logs.join("\n")}`,
        );
      }
      await sleep(POLL_MS);
    }
  }
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function exitsWithin(service: Service, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<boolean>((done) =>
    timer = setTimeout(() => done(false), ms)
  );
  const exited = await Promise.race([service.status.then(() => true), late]);
  clearTimeout(timer);
  return exited;
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}
