/**
 * The report of a verify run, as a person reads it in ten seconds: the verdict first, one line per
 * figure, and the tasks named only when something is wrong.
 * @module
 */
import { printable } from "../../core/text.ts";
import { type Duplicate, percentile, type Published } from "./checker.ts";
import type { VerifyReport } from "./mod.ts";

/** Tasks named in one line at most; `--json` has them all. */
const MAX_NAMED = 10;

/**
 * The report as text lines (no colours).
 *
 * @example
 * ```ts
 * console.log(renderReport(report).join("\n"));
 * ```
 */
export function renderReport(report: VerifyReport): string[] {
  const { verdict: v, settings: s } = report;
  const seconds = report.elapsedMs / 1000;
  const lines = [
    `tareas verify: ${v.ok ? "PASS" : "FAIL"}`,
    `  broker        ${report.broker.product} ${report.broker.version}, ${report.broker.describe}`,
    `  tareas        ${report.tareas}`,
    `  run           ${s.tasks} tasks of ${s.durationMs.min}-${s.durationMs.max} ms, ` +
    `${s.workers} workers (prefetch ${s.prefetch}, concurrency ${s.concurrency}), ` +
    `${report.kills.length} of ${s.kills} SIGKILLs`,
    ...brokerKillLine(report),
    `  published     ${v.published}, confirmed ${v.confirmed}`,
    `  completed     ${v.completed}`,
    `  lost          ${v.lost.length}${named(v.lost)}`,
    duplicatesLine(v.duplicates),
    ...v.duplicates.filter((d) => !d.explained).slice(0, MAX_NAMED).map((d) =>
      `    #${d.seq} ${d.taskId}: ${d.why.filter((why) => why.startsWith("NOT")).join("; ")}`
    ),
    `  redelivery    after a SIGKILL: ${latency(v.redeliveryMs)}`,
    ...(report.brokerKill
      ? [`                after the kill -9: ${latency(v.brokerRedeliveryMs)}`]
      : []),
    `  throughput    ${
      seconds > 0 ? Math.round(v.completed / seconds) : v.completed
    } tasks/s (${v.completed} in ${seconds.toFixed(1)} s, published in ` +
    `${(report.publishMs / 1000).toFixed(1)} s)`,
    ...problemLines(report),
  ];
  if (!v.ok) lines.push(`  verdict       ${failures(report).join("; ")}`);
  return lines.map(printable);
}

function brokerKillLine(report: VerifyReport): string[] {
  const kill = report.brokerKill;
  if (kill === undefined) return [];
  const what = kill.kind === "broker" ? "the broker" : `the queue leader's node ${kill.node}`;
  return [
    `  kill -9       ${what} at ${(kill.atMs / 1000).toFixed(1)} s, back after ` +
    `${(kill.restartMs / 1000).toFixed(1)} s`,
  ];
}

function duplicatesLine(duplicates: readonly Duplicate[]): string {
  if (duplicates.length === 0) return "  run twice     0";
  const bad = duplicates.filter((d) => !d.explained).length;
  const cut = (kind: string) =>
    duplicates.filter((d) => d.explained && d.why.every((why) => why.startsWith(kind))).length;
  const inHand = cut("in hand");
  const failed = cut("failed");
  const acked = duplicates.length - bad - inHand - failed;
  const explained = [
    inHand ? `${inHand} in hand on a killed worker or broker` : "",
    failed ? `${failed} failed while a node was down` : "",
    acked ? `${acked} completed just before a kill, its ack not yet at the broker` : "",
  ].filter(Boolean).join(", ");
  return `  run twice     ${duplicates.length}: ` +
    (bad === 0 ? `all explained (${explained})` : `${bad} NOT EXPLAINED` +
      (explained ? `; explained: ${explained}` : ""));
}

/** Lines for what a good run does not have: dead, not run, unconfirmed, stray. */
function problemLines(report: VerifyReport): string[] {
  const v = report.verdict;
  const lines: string[] = [];
  if (report.end !== "completed") lines.push(`  ended         ${report.end} with tasks missing`);
  if (report.kills.length < report.settings.kills) {
    lines.push(
      `  note          ${report.kills.length} of ${report.settings.kills} SIGKILLs: too few ` +
        "tasks were mid-work when one was due (a longer --duration-ms helps)",
    );
  }
  if (v.dead.length) lines.push(`  dead-lettered ${v.dead.length}${named(v.dead)}`);
  if (v.notRun.length) lines.push(`  not run       ${v.notRun.length}${named(v.notRun)}`);
  if (v.unconfirmed.length) {
    lines.push(`  unconfirmed   ${v.unconfirmed.length}${named(v.unconfirmed)}`);
  }
  if (v.unexpected.length) {
    lines.push(
      `  not ours      ${v.unexpected.length} completions of tasks verify never published`,
    );
  }
  if (v.reconnects.length) {
    lines.push(`  reconnects    ${v.reconnects.length} that verify did not cause`);
  }
  for (const exit of report.workerExits) {
    lines.push(`  worker exit   ${exit.worker} exited on its own (code ${exit.code})`);
  }
  if (report.foreignWorkers.length) {
    lines.push(`  other workers ${report.foreignWorkers.join(", ")} consumed from the queue too`);
  }
  return lines;
}

/** What failed, in a few words each. */
function failures(report: VerifyReport): string[] {
  const v = report.verdict;
  const counts: [number, string][] = [
    [v.lost.length, "lost"],
    [v.duplicates.filter((d) => !d.explained).length, "run twice unexplained"],
    [v.dead.length, "dead-lettered"],
    [v.notRun.length, "not run"],
    [v.unconfirmed.length, "unconfirmed"],
    [v.unexpected.length, "not ours"],
  ];
  return counts.filter(([count]) => count > 0).map(([count, what]) => `${count} ${what}`);
}

/** ": #12 <id>, #40 <id> and 3 more", or nothing for none. */
function named(tasks: readonly Published[]): string {
  if (tasks.length === 0) return "";
  const shown = tasks.slice(0, MAX_NAMED).map((task) => `#${task.seq} ${task.taskId}`);
  const more = tasks.length - shown.length;
  return `: ${shown.join(", ")}${more > 0 ? ` and ${more} more` : ""}`;
}

/** "p50 12 ms, p99 40 ms, max 45 ms (7 tasks)", or that none was measured. */
function latency(values: readonly number[]): string {
  if (values.length === 0) return "none measured (no started task was in hand on a kill)";
  const ms = (p: number) => `${Math.round(percentile(values, p)!)} ms`;
  return `p50 ${ms(50)}, p99 ${ms(99)}, max ${ms(100)} (${values.length} task${
    values.length === 1 ? "" : "s"
  })`;
}
