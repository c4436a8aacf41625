/**
 * The figures of a failover run, from what the load child recorded, what
 * the monitor showed and what the table holds afterwards; the targets they
 * are held to; and the table and final line the task prints.
 *
 * @module
 */
import type { FailoverRecord, NodeState } from "./formation.ts";
import { type LoadResult, OK, OP_GET, OP_SET } from "./protocol.ts";

/** The issue's targets, across the two failovers at concurrency 10. */
export const TARGETS = { failedCalls: 10, lost: 0, olderReads: 0 } as const;

/** One call, decoded from {@linkcode LoadResult.calls}. */
interface Call {
  /** Epoch ms. */
  start: number;
  end: number;
  op: number;
  /** `null` when it succeeded. */
  code: string | null;
}

/** What the app saw during one failover. */
export interface FailoverFigures {
  from: string;
  to: string;
  /** Seconds from `perform failover` until the formation was healthy again. */
  monitorSeconds: number;
  /** Failed calls (set or get) ending between this failover's start and the next one's. */
  failed: number;
  /** Seconds from the first failed `set` to the first `set` that succeeded after it. */
  firstFailureToSuccess: number | null;
  /** Seconds from the first to the last failed `set`. */
  failingFor: number | null;
  /** The longest time in the window in which no `set` succeeded, in seconds. */
  longestStall: number;
  /** Per stage (states as the monitor showed them): its start and the calls ending in it. */
  stages: {
    at: number;
    label: string;
    setsOk: number;
    getsOk: number;
    failed: Record<string, number>;
  }[];
}

/** Every figure the task prints. */
export interface Figures {
  runtime: string;
  seconds: number;
  calls: number;
  sets: number;
  gets: number;
  failed: number;
  failedByCode: Record<string, number>;
  messages: Record<string, string>;
  acknowledged: number;
  lost: string[];
  /** Ids whose stored version is newer than the last acknowledged one (a failed write landed). */
  landedAfterFailure: number;
  olderReads: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** Calls that took a second or more: the slowest first, at most 10. */
  slow: {
    op: string;
    startedAfter: string;
    seconds: number;
    outcome: string;
  }[];
  /** How many calls took a second or more. */
  slowCount: number;
  failovers: FailoverFigures[];
}

/**
 * Computes the figures.
 *
 * @param result What the load child wrote.
 * @param failovers The failovers, in order.
 * @param stored Per session id, the version the table holds (absent: no row).
 * @param loadEnd Epoch ms when the load was told to stop.
 */
export function computeFigures(
  result: LoadResult,
  failovers: FailoverRecord[],
  stored: Map<string, number>,
  loadEnd: number,
): Figures {
  const calls: Call[] = [];
  for (let i = 0; i < result.calls.length; i += 4) {
    const start = result.base + result.calls[i];
    const code = result.calls[i + 3];
    calls.push({
      start,
      end: start + result.calls[i + 1],
      op: result.calls[i + 2],
      code: code === OK ? null : result.codes[code],
    });
  }
  calls.sort((a, b) => a.end - b.end);
  const failedByCode: Record<string, number> = {};
  for (const c of calls) {
    if (c.code) failedByCode[c.code] = (failedByCode[c.code] ?? 0) + 1;
  }
  const durations = Float64Array.from(calls, (c) => c.end - c.start).sort();
  const lost: string[] = [];
  let landedAfterFailure = 0;
  for (const [sid, version] of Object.entries(result.acked)) {
    const found = stored.get(sid) ?? 0;
    if (found < version) lost.push(sid);
  }
  for (const [sid, version] of stored) {
    if (version > (result.acked[sid] ?? 0)) landedAfterFailure++;
  }
  let first = loadEnd;
  for (const c of calls) first = Math.min(first, c.start);
  return {
    runtime: result.runtime,
    seconds: (loadEnd - first) / 1000,
    calls: calls.length,
    sets: calls.filter((c) => c.op === OP_SET).length,
    gets: calls.filter((c) => c.op === OP_GET).length,
    failed: calls.filter((c) => c.code).length,
    failedByCode,
    messages: result.messages,
    acknowledged: Object.keys(result.acked).length,
    lost,
    landedAfterFailure,
    olderReads: result.older.length,
    latencyMs: {
      p50: quantile(durations, 0.5),
      p99: quantile(durations, 0.99),
      max: durations.at(-1) ?? 0,
    },
    slowCount: calls.filter((c) => c.end - c.start >= 1000).length,
    slow: calls.filter((c) => c.end - c.start >= 1000)
      .sort((a, b) => (b.end - b.start) - (a.end - a.start)).slice(0, 10)
      .map((c) => ({
        op: c.op === OP_SET ? "set" : "get",
        startedAfter: sinceFailover(c.start, failovers),
        seconds: (c.end - c.start) / 1000,
        outcome: c.code ?? "ok",
      })),
    failovers: failovers.map((f, i) =>
      failoverFigures(f, calls, failovers[i + 1]?.startedAt ?? Infinity)
    ),
  };
}

function failoverFigures(
  f: FailoverRecord,
  calls: Call[],
  until: number,
): FailoverFigures {
  const inWindow = calls.filter((c) => c.end >= f.startedAt && c.end < until);
  // What the app cannot do during a failover is write: the durations count sets.
  const sets = inWindow.filter((c) => c.op === OP_SET);
  const failures = sets.filter((c) => c.code);
  const firstFailure = failures[0];
  const lastFailure = failures.at(-1);
  const recovered = firstFailure &&
    sets.find((c) => !c.code && c.end > firstFailure.end);
  let longestStall = 0;
  let previous = f.startedAt;
  for (const c of sets) {
    if (c.code) continue;
    longestStall = Math.max(longestStall, c.end - previous);
    previous = c.end;
  }
  const stages = f.changes.map((change, i) => {
    const from = i === 0 ? f.startedAt : change.at;
    const to = f.changes[i + 1]?.at ?? until;
    const ended = inWindow.filter((c) => c.end >= from && c.end < to);
    const failed: Record<string, number> = {};
    for (const c of ended) {
      if (c.code) failed[c.code] = (failed[c.code] ?? 0) + 1;
    }
    return {
      at: (from - f.startedAt) / 1000,
      label: stateLabel(change.states),
      setsOk: ended.filter((c) => !c.code && c.op === OP_SET).length,
      getsOk: ended.filter((c) => !c.code && c.op === OP_GET).length,
      failed,
    };
  });
  return {
    from: f.from,
    to: f.to,
    monitorSeconds: (f.healthyAt - f.startedAt) / 1000,
    failed: inWindow.filter((c) => c.code).length,
    firstFailureToSuccess: firstFailure && recovered
      ? (recovered.end - firstFailure.end) / 1000
      : null,
    failingFor: firstFailure && lastFailure
      ? (lastFailure.end - firstFailure.end) / 1000
      : null,
    longestStall: longestStall / 1000,
    stages,
  };
}

/** `"failover 2 + 0.31 s"`, or `"before the first failover"`. */
function sinceFailover(at: number, failovers: FailoverRecord[]): string {
  const i = failovers.findLastIndex((f) => f.startedAt <= at);
  if (i < 0) return "before the first failover";
  return `failover ${i + 1} + ${
    ((at - failovers[i].startedAt) / 1000).toFixed(2)
  } s`;
}

function stateLabel(states: NodeState[]): string {
  return states.map((s) =>
    `${s.name} ${s.current}${s.assigned === s.current ? "" : `→${s.assigned}`}`
  ).join(", ");
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** The targets missed, as short phrases (empty when all are met). */
export function missedTargets(f: Figures): string[] {
  const missed: string[] = [];
  if (f.failed > TARGETS.failedCalls) missed.push("failed calls");
  if (f.lost.length > TARGETS.lost) missed.push("acknowledged writes lost");
  if (f.olderReads > TARGETS.olderReads) missed.push("older values read");
  return missed;
}

/** The report: a table of the figures, the stages of each failover, and a final plain line. */
export function formatReport(f: Figures): string {
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  const s = (x: number | null) => x === null ? "–" : `${x.toFixed(2)} s`;
  const verdict = (ok: boolean) => ok ? "met" : "MISSED";
  const codes = Object.entries(f.failedByCode).sort((a, b) => b[1] - a[1]);
  const rows: [string, string, string][] = [
    [
      "calls (set + get)",
      `${f.calls} (${f.sets} + ${f.gets}) in ${f.seconds.toFixed(1)} s`,
      "",
    ],
    [
      "failed calls",
      String(f.failed),
      `≤ ${TARGETS.failedCalls}: ${verdict(f.failed <= TARGETS.failedCalls)}`,
    ],
    ...codes.map((
      [code, n],
    ): [string, string, string] => [`  ${code}`, String(n), ""]),
    [
      "acknowledged writes lost",
      `${f.lost.length} of ${f.acknowledged} ids`,
      `${TARGETS.lost}: ${verdict(f.lost.length <= TARGETS.lost)}`,
    ],
    [
      "older value read",
      String(f.olderReads),
      `${TARGETS.olderReads}: ${verdict(f.olderReads <= 0)}`,
    ],
    [
      "ids holding a write reported failed",
      String(f.landedAfterFailure),
      "(information)",
    ],
    [
      "latency p50 / p99 / max",
      `${ms(f.latencyMs.p50)} / ${ms(f.latencyMs.p99)} / ${
        ms(f.latencyMs.max)
      }`,
      "",
    ],
    ["calls taking ≥ 1 s", String(f.slowCount), ""],
    ...f.failovers.flatMap((o, i): [string, string, string][] => [
      [
        `failover ${i + 1} (${o.from} → ${o.to})`,
        `${o.failed} failed; sets: first failure → first success ${
          s(o.firstFailureToSuccess)
        }, failing for ${s(o.failingFor)}, longest without a success ${
          s(o.longestStall)
        }`,
        `monitor: healthy after ${s(o.monitorSeconds)}`,
      ],
    ]),
  ];
  const width = [0, 1, 2].map((k) =>
    Math.max(...rows.map((r) => r[k].length), 6)
  );
  const line = (r: string[]) =>
    `| ${r.map((c, k) => c.padEnd(width[k])).join(" | ")} |`;
  const out = [
    `failover test on ${f.runtime}`,
    line(["figure", "value", "target"]),
    line(width.map((w) => "-".repeat(w))),
    ...rows.map(line),
  ];
  if (codes.length) {
    out.push(
      "",
      "error messages (first seen):",
      ...codes.map(([code]) => `  ${code}: ${f.messages[code]}`),
    );
  }
  if (f.slow.length) {
    out.push("", "slowest calls (≥ 1 s):");
    for (const c of f.slow) {
      out.push(
        `  ${c.op} started at ${c.startedAfter}: ${
          c.seconds.toFixed(2)
        } s, ${c.outcome}`,
      );
    }
  }
  f.failovers.forEach((o, i) => {
    out.push(
      "",
      `failover ${i + 1} stages (monitor states; calls ending in each stage):`,
    );
    for (const st of o.stages) {
      const failed = Object.entries(st.failed).map(([c, n]) => `${c}×${n}`)
        .join(" ");
      out.push(
        `  +${
          st.at.toFixed(2)
        } s  ${st.label}: ok ${st.setsOk} set + ${st.getsOk} get` +
          (failed ? `; failed ${failed}` : ""),
      );
    }
  });
  out.push("", finalLine(f));
  return out.join("\n");
}

/** The last line: how many targets were missed, and the three figures. */
export function finalLine(f: Figures): string {
  const missed = missedTargets(f);
  return `failover (${f.runtime}): ${missed.length} of 3 targets missed` +
    `${
      missed.length ? ` (${missed.join(", ")})` : ""
    }: ${f.failed} failed calls (target ≤ ${TARGETS.failedCalls}), ` +
    `${f.lost.length} acknowledged writes lost (target 0), ${f.olderReads} older values read (target 0)`;
}
