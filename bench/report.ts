/**
 * Turns a {@linkcode SuiteResult} into BENCHMARKS.md: environment, every goal of the throughput
 * issue met or not, and every figure as median with its spread (min–max) and count.
 * @module
 */
import { quantile, summarize } from "./_stats.ts";
import type { PublishRun, ThroughputRun } from "./_results.ts";
import {
  bestOf,
  CALL_BULLMQ_GOAL,
  CALL_FLOOR_GOAL,
  CLUSTER_GOAL_MS,
  consumerCpuPerTask,
  CPU_GOAL,
  DELAY_LATENESS_GOAL_MS,
  FAILOVER_GOAL_MS,
  PUBLISH_GOAL,
  rateOf,
  ratiosPerRep,
  RECOVERY_GOAL_MS,
  repetitions,
  RSS_GOAL,
  SCALE_PEAK_GOAL_MIB,
  SCALE_PER_TASK_GOAL_KIB,
  SHORT_GOAL,
  STARTUP_GOAL,
  THROUGHPUT_GOAL,
} from "./_targets.ts";
import { CALL_IN_FLIGHT, CALL_PREFETCH, CALL_SYSTEMS, type CallSystem } from "./call.ts";
import { DELAYS_PREFETCH, type DelaysRun, EARLY_TOLERANCE_MS } from "./delays.ts";
import {
  BULLMQ_SWEEP,
  callRatios,
  type DelaysResult,
  publishRatios,
  SHORT_PREFETCH,
  type SuiteResult,
  type ThroughputResult,
} from "./suite.ts";

/** One goal, evaluated. */
export interface TargetCheck {
  /** What is compared. */
  name: string;
  /** The goal, in words. */
  goal: string;
  /** The measured figure, formatted. */
  measured: string;
  /** Met, not met, or not measured. */
  met: boolean | undefined;
  /** Why, when not met or not measured. */
  reason: string;
}

/**
 * `median (min–max, n=K)` of `values` with `digits` decimals and an optional unit after the
 * median and the maximum; `–` when there are none.
 *
 * @example
 * ```ts
 * formatSpread([9.2, 7.3, 14], 1, " ms"); // "9.2 ms (7.3–14.0 ms, n=3)"
 * ```
 */
export function formatSpread(values: readonly number[], digits = 0, unit = ""): string {
  if (values.length === 0) return "–";
  const s = summarize(values);
  const f = (x: number) => x.toFixed(digits);
  return values.length === 1
    ? `${f(s.median)}${unit} (n=1)`
    : `${f(s.median)}${unit} (${f(s.min)}–${f(s.max)}${unit}, n=${values.length})`;
}

function defined<T>(values: readonly (T | undefined)[]): T[] {
  return values.filter((v): v is T => v !== undefined);
}

const ratio = (values: readonly number[]) => formatSpread(values, 2, "×");
const micros = (seconds: number | undefined, count: number) =>
  seconds === undefined || count === 0 ? undefined : seconds / count * 1e6;

/** Per-repetition ratios of ours to the scenario's floor, in tasks per second. */
export function oursOverFloor(t: ThroughputResult): number[] {
  return ratiosPerRep(
    repetitions(t.runs),
    (r) => rateOf(t.runs, "ours", r),
    (r) => rateOf(t.runs, t.scenario.floor, r),
  );
}

/** Per-repetition ratios of ours to the best BullMQ variant of that repetition. */
export function oursOverBullmq(t: ThroughputResult): number[] {
  return ratiosPerRep(
    repetitions(t.runs),
    (r) => rateOf(t.runs, "ours", r),
    (r) => bestOf(t.runs, t.scenario.bullmq, r)?.rate,
  );
}

/** Per-repetition ratios of our workers' CPU per task to the floor consumers'. */
export function cpuOursOverFloor(t: ThroughputResult): number[] {
  return ratiosPerRep(
    repetitions(t.runs),
    (r) => consumerCpuPerTask(t.runs, "ours", r),
    (r) => consumerCpuPerTask(t.runs, t.scenario.floor, r),
  );
}

function check(
  name: string,
  goal: string,
  values: readonly number[],
  pick: (values: readonly number[]) => number,
  pass: (x: number) => boolean,
  format: (values: readonly number[]) => string,
  whyNot: string,
): TargetCheck {
  if (values.length === 0) {
    return { name, goal, measured: "–", met: undefined, reason: "not measured" };
  }
  const met = pass(pick(values));
  return { name, goal, measured: format(values), met, reason: met ? "" : whyNot };
}

const median = (values: readonly number[]) => quantile(values, 0.5);
const maximum = (values: readonly number[]) => Math.max(...values);

/** Per-task memory of the scale run beyond the one-task baseline, KiB per task. */
export function scalePerTaskKiB(result: SuiteResult): number | undefined {
  const { baseline, run } = result.scale ?? {};
  if (baseline?.peakRssKiB === undefined || run?.peakRssKiB === undefined || run.tasks < 2) {
    return undefined;
  }
  return Math.max(0, run.peakRssKiB - baseline.peakRssKiB) / (run.tasks - 1);
}

/** Evaluates every goal against `result`. */
export function checkTargets(result: SuiteResult): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const t of result.throughput) {
    const k = t.scenario.key;
    if (k !== "d") {
      checks.push(check(
        `Throughput ${k}: ${t.scenario.title}`,
        `ours ≥ ${THROUGHPUT_GOAL}× floor (publisher running)`,
        oursOverFloor(t),
        median,
        (x) => x >= THROUGHPUT_GOAL,
        ratio,
        "ours is slower than the floor by more than the goal allows",
      ));
    } else {
      checks.push(check(
        `Short tasks d: prefetch ${SHORT_PREFETCH}, concurrency ${SHORT_PREFETCH}`,
        `ours ≥ ${SHORT_GOAL}× BullMQ's best concurrency (${BULLMQ_SWEEP.join(", ")})`,
        oursOverBullmq(t),
        median,
        (x) => x >= SHORT_GOAL,
        ratio,
        "BullMQ's best concurrency completes more than half as many tasks per second as ours",
      ));
    }
    checks.push(check(
      `CPU per task ${k}: our worker vs the bare consumer`,
      k === "d"
        ? `≤ ${CPU_GOAL}× the floor with batched acks (our reading: goal 1 names a, b and c)`
        : `≤ ${CPU_GOAL}× the floor`,
      cpuOursOverFloor(t),
      median,
      (x) => x <= CPU_GOAL,
      ratio,
      "our worker spends more CPU per task than the goal allows (see CPU per task)",
    ));
  }
  if (result.publish) {
    const p = result.publish;
    checks.push(check(
      "Publish: `produce --count N`",
      `≥ ${PUBLISH_GOAL}× the raw confirm-channel rate`,
      publishRatios(p, "ours"),
      median,
      (x) => x >= PUBLISH_GOAL,
      ratio,
      "our producer publishes slower than a bare confirm channel by more than the goal allows",
    ));
    const library = check(
      "Publish: the library's `enqueueMany`",
      `≥ ${PUBLISH_GOAL}× the raw confirm-channel rate`,
      publishRatios(p, "library"),
      median,
      (x) => x >= PUBLISH_GOAL,
      ratio,
      "the library publishes slower than a bare confirm channel by more than the goal allows",
    );
    if (p.libraryUnavailable) library.reason = p.libraryUnavailable;
    checks.push(library);
  }
  if (result.options.scenarios.includes("recovery")) {
    const runs = result.recovery ?? [];
    const first = runs.map((x) => x.resumeMs);
    const r = check(
      "Recovery after a broker restart",
      `every worker completes a task < ${RECOVERY_GOAL_MS / 1000} s after the broker accepts ` +
        "connections, every restart",
      runs.map((x) => x.allResumedMs),
      maximum,
      (x) => x < RECOVERY_GOAL_MS,
      (v) =>
        `every worker: max ${maximum(v).toFixed(0)} ms, ${formatSpread(v, 0, " ms")}; ` +
        `first completion: ${formatSpread(first, 0, " ms")}`,
      "after a restart our workers wait out their reconnect backoff",
    );
    const skip = result.skipped.find((s) => s.scenario === "recovery");
    if (skip) r.reason = skip.why;
    checks.push(r);
  }
  if (result.scale) {
    const run = result.scale.run;
    const n = result.options.scaleTasks;
    checks.push({
      name: `Scale: \`produce --count ${n} --wait\`, 3 workers`,
      goal: "exits 0 and prints its summary",
      measured: run
        ? `exit ${run.exitCode ?? "none (killed)"}, summary ${
          run.summaryPrinted ? "" : "not "
        }printed`
        : "–",
      met: run ? run.exitCode === 0 && run.summaryPrinted : undefined,
      reason: run ? (run.failure ?? "no summary line") : "not measured",
    });
    const peakMiB = run?.peakRssKiB === undefined ? [] : [run.peakRssKiB / 1024];
    checks.push(check(
      "Scale: peak memory of `produce --wait`",
      `< ${SCALE_PEAK_GOAL_MIB} MiB`,
      peakMiB,
      maximum,
      (x) => x < SCALE_PEAK_GOAL_MIB,
      (v) => `${v[0]!.toFixed(0)} MiB (n=1)`,
      "the --wait process keeps per-task state that grows with the run",
    ));
    const perTask = scalePerTaskKiB(result);
    checks.push(check(
      "Scale: memory per task beyond the one-task baseline",
      `≤ ${SCALE_PER_TASK_GOAL_KIB} KiB per task`,
      perTask === undefined ? [] : [perTask],
      maximum,
      (x) => x <= SCALE_PER_TASK_GOAL_KIB,
      (v) => `${v[0]!.toFixed(2)} KiB (n=1)`,
      "the --wait process keeps per-task state that grows with the run",
    ));
  }
  if (result.makespan) {
    for (const key of ["plain", "killed"] as const) {
      const runs = result.makespan[key];
      const lost = runs.reduce((sum, r) => sum + r.lost, 0);
      checks.push({
        name: `Original scenario, ${key === "plain" ? "no kill" : "a worker SIGKILLed mid-run"}`,
        goal: "all 10 tasks complete, none lost",
        measured: runs.length
          ? `${runs.filter((r) => r.lost === 0).length}/${runs.length} runs complete, ` +
            `makespan / bound ${formatSpread(runs.map((r) => r.makespanMs / r.boundMs), 2)}`
          : "–",
        met: runs.length ? lost === 0 : undefined,
        reason: runs.length ? `${lost} task(s) never completed` : "not measured",
      });
    }
  }
  if (result.failover) {
    const ours = result.failover.ours.map((r) => r.latencyMs);
    checks.push(check(
      "Failover: a killed worker's task starts elsewhere",
      `p50 ≤ ${FAILOVER_GOAL_MS} ms`,
      ours,
      median,
      (x) => x <= FAILOVER_GOAL_MS,
      (v) => formatSpread(v, 1, " ms"),
      "the broker requeues the task when the killed worker's TCP connection closes; the rest " +
        "is the idle worker's receive, decode and task.started publish",
    ));
  }
  if (result.startup) {
    const { bare, ours } = result.startup;
    const of = (pick: (r: { startupMs: number; rssKiB: number }) => number) =>
      bare.length && ours.length ? [median(ours.map(pick)) / median(bare.map(pick))] : [];
    checks.push(check(
      "Start-up to worker.online",
      `≤ ${STARTUP_GOAL}× the bare script`,
      of((r) => r.startupMs),
      maximum,
      (x) => x <= STARTUP_GOAL,
      (v) => `${v[0]!.toFixed(2)}× (ratio of medians)`,
      "our worker loads more modules and declares its topology before it is online",
    ));
    checks.push(check(
      "Idle RSS",
      `≤ ${RSS_GOAL}× the bare script`,
      of((r) => r.rssKiB),
      maximum,
      (x) => x <= RSS_GOAL,
      (v) => `${v[0]!.toFixed(2)}× (ratio of medians)`,
      "our worker loads more modules than the bare script",
    ));
  }
  checks.push(...callChecks(result), ...delayChecks(result));
  if (result.options.scenarios.includes("cluster")) {
    const skip = result.skipped.find((s) => s.scenario === "cluster");
    for (const target of ["leader", "follower"] as const) {
      const runs = (result.cluster ?? []).filter((r) => r.target === target);
      const lost = runs.reduce((sum, r) => sum + r.lost, 0);
      const c = check(
        `Cluster: SIGKILL of the ${target}'s node under load`,
        `next task.completed p50 < ${CLUSTER_GOAL_MS / 1000} s; 0 tasks lost`,
        runs.map((r) => r.resumeMs),
        median,
        (x) => x < CLUSTER_GOAL_MS && lost === 0,
        (v) => `${formatSpread(v, 0, " ms")}; max ${maximum(v).toFixed(0)} ms; ${lost} lost`,
        lost > 0 ? `${lost} confirmed task(s) never completed` : "the workers resume too late",
      );
      if (skip) c.reason = skip.why;
      checks.push(c);
    }
  }
  return checks;
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

function environmentSection(result: SuiteResult): string {
  const e = result.environment;
  const load = (values: number[]) => values.map((x) => x.toFixed(2)).join(", ");
  const rows = [
    ["Date", e.date],
    ["CPU", `${e.cpu}, ${e.cores} logical cores`],
    ["Memory", `${e.memoryGiB.toFixed(1)} GiB`],
    ["OS", e.os],
    ["Runtime", e.deno],
    ["Broker", `${e.broker}${e.brokerProcess ? ` (${e.brokerProcess})` : ""}`],
    ["Redis", `${e.redis}${e.redisProcess ? ` (${e.redisProcess})` : ""}`],
    [
      "Packages",
      Object.entries(e.packages).map(([n, v]) => `${n} ${v.replace(/^.*@/, "")}`)
        .join(", "),
    ],
    ["Commit", e.commit ?? "none"],
    ["Load average (1, 5, 15 min) at start", load(e.loadAverage)],
    ["Load average at end", load(result.finalLoadAverage)],
  ];
  return `## Machine\n\n${table(["", ""], rows)}`;
}

/** The call scenario's goals: ours within 2× the floor and below BullMQ, per number in flight. */
function callChecks(result: SuiteResult): TargetCheck[] {
  const c = result.call;
  if (!c) return [];
  return CALL_IN_FLIGHT.flatMap((k) => [
    check(
      `Call round trip, ${k} in flight: ours vs a bare request/reply`,
      `p50 ≤ ${CALL_FLOOR_GOAL}× the bare amqplib request/reply's`,
      callRatios(c, k, "floor"),
      median,
      (x) => x <= CALL_FLOOR_GOAL,
      ratio,
      "`producer.call` adds more than the goal allows to the same messages sent bare",
    ),
    check(
      `Call round trip, ${k} in flight: ours vs BullMQ`,
      "p50 below BullMQ's `waitUntilFinished`",
      callRatios(c, k, "bullmq"),
      median,
      (x) => x < CALL_BULLMQ_GOAL,
      ratio,
      `BullMQ's round trip is shorter: ${CALL_BULLMQ_REASON}`,
    ),
  ]);
}

/** The delays scenario's goal: none early, lateness p99 within a second. */
function delayChecks(result: SuiteResult): TargetCheck[] {
  if (!result.delays) return [];
  const runs = defined(result.delays.delayed);
  const early = runs.reduce((n, r) => n + (r.lateness?.early ?? 0), 0);
  const o = result.options;
  return [check(
    `Delayed tasks at scale: ${o.delayTasks} tasks, delays 0–${o.maxDelayMs / 1000} s`,
    `none early; lateness p99 ≤ ${DELAY_LATENESS_GOAL_MS / 1000} s (the issue's promise on an ` +
      "idle system)",
    defined(runs.map((r) => r.lateness?.p99)),
    median,
    (x) => x <= DELAY_LATENESS_GOAL_MS && early === 0,
    (v) => `p99 ${formatSpread(v, 0, " ms")}; ${early} early`,
    early > 0
      ? `${early} task(s) started before their time`
      : "tasks started more than the goal after their time (see Delayed tasks)",
  )];
}

/** Why BullMQ can be faster, and what a user can trade. */
export const BULLMQ_REASON = "BullMQ keeps jobs in a Redis that here keeps nothing on disk (no " +
  "RDB, no AOF), so a Redis crash loses every queued job; our tasks sit in a quorum queue, " +
  "fsync'd to disk before the publish is confirmed, and survive a broker crash. BullMQ also " +
  "batches enqueueing (addBulk) and fetches the next job in the same round trip as the " +
  "completion";

/** Why BullMQ's round trip can be shorter than ours. */
export const CALL_BULLMQ_REASON = "a BullMQ job and its completion are writes to a Redis that " +
  "here keeps nothing on disk, where each of our calls waits for two writes to quorum queues " +
  "(the task, then its result), each on disk before the broker confirms it";

function targetsSection(result: SuiteResult): string {
  const checks = checkTargets(result);
  if (checks.length === 0) return "";
  const rows = checks.map((c) => [
    c.name,
    c.goal,
    c.measured,
    c.met === undefined ? "not measured" : c.met ? "**met**" : "**not met**",
  ]);
  const reasons = checks.filter((c) => c.met !== true).map((c) =>
    `- ${c.name}, ${c.met === false ? "not met" : "not measured"}: ${c.reason.replace(/\.$/, "")}.`
  );
  const cpu = result.throughput.filter((t) => t.scenario.key !== "d").map((t) => {
    const per = (key: string) =>
      defined(t.runs[key]?.map((run) => micros(run?.cpu.consumers, run?.completed ?? 0)) ?? []);
    const ours = per("ours");
    const floor = per(t.scenario.floor);
    return ours.length && floor.length
      ? `${t.scenario.key}: ${median(ours).toFixed(0)} µs against ${median(floor).toFixed(0)} µs`
      : undefined;
  }).filter(Boolean);
  if (cpu.length) {
    reasons.push(
      "- Where our throughput goes: the broker, the producer and the workers share the cores, " +
        "so every µs of CPU a worker spends per task is taken from the others. Per no-op task, " +
        `our worker process spent (median) ${cpu.join("; ")} for the bare consumer; besides ` +
        "the delivery and the ack it decodes and validates the task, runs the handler with its " +
        "abort signal and deadline, and queues its task events (nobody listens to them here: " +
        "an empty probe per batch asks, and they are dropped) (see CPU per task).",
    );
  }
  if (result.throughput.some((t) => oursOverBullmq(t).some((x) => x < 1))) {
    reasons.push(`- Why BullMQ can be faster: ${BULLMQ_REASON}.`);
  }
  return [
    "## Targets",
    "",
    "The goals of the throughput issue (and the older ones this benchmark keeps). Ratios are " +
    "taken within each repetition, then summarized: median (min–max, n = repetitions).",
    "",
    table(["Target", "Goal", "Measured", "Status"], rows),
    ...(reasons.length ? ["", ...reasons] : []),
  ].join("\n");
}

function variantLabel(t: ThroughputResult, key: string): string {
  return t.scenario.variants.find((v) => v.key === key)?.label ?? key;
}

function throughputSection(result: SuiteResult): string {
  if (result.throughput.length === 0) return "";
  const o = result.options;
  const rates: string[][] = [];
  const ratios: string[][] = [];
  for (const t of result.throughput) {
    for (const [key, slots] of Object.entries(t.runs)) {
      const values = defined(slots).map((r) => r.tasksPerSecond);
      rates.push([
        `${t.scenario.key}. ${t.scenario.title}`,
        variantLabel(t, key),
        formatSpread(values),
      ]);
    }
    const best = t.scenario.bullmq.length > 1
      ? (() => {
        const wins = new Map<string, number>();
        for (let rep = 0; rep < repetitions(t.runs); rep++) {
          const b = bestOf(t.runs, t.scenario.bullmq, rep);
          if (b) wins.set(b.key, (wins.get(b.key) ?? 0) + 1);
        }
        return [...wins].map(([k, n]) => `${variantLabel(t, k)} best in ${n}`).join(", ");
      })()
      : "";
    ratios.push([
      t.scenario.key,
      ratio(oursOverFloor(t)),
      `${ratio(oursOverBullmq(t))}${best ? ` (${best})` : ""}`,
      ratio(cpuOursOverFloor(t)),
    ]);
  }
  const detail: string[][] = [];
  for (const t of result.throughput) {
    for (const [key, slots] of Object.entries(t.runs)) {
      slots.forEach((run, rep) => {
        if (!run) return;
        const ms = (s: number | undefined) => s === undefined ? "–" : (s * 1000).toFixed(0);
        detail.push([
          t.scenario.key,
          variantLabel(t, key),
          String(rep + 1),
          run.loadAverage.toFixed(2),
          `${run.completed}/${run.tasks}`,
          run.elapsedMs.toFixed(0),
          run.tasksPerSecond.toFixed(0),
          run.publishMs === undefined ? "–" : run.publishMs.toFixed(0),
          ms(run.cpu.consumers),
          ms(run.cpu.producer),
          ms(run.cpu.broker),
        ]);
      });
    }
  }
  return [
    `## Throughput: ${o.tasks} no-op tasks per run`,
    "",
    "Tasks per second, median (min–max, n = repetitions). The systems of one scenario ran one " +
    "after the other within each repetition, in an order rotated every repetition; after " +
    `${o.reps} repetitions, more (up to ${o.maxReps}) ran while a goal's per-repetition ratios ` +
    "straddled it.",
    "",
    table(["Scenario", "System", "Tasks/s"], rates),
    "",
    "Ratios taken within each repetition, median (min–max, n):",
    "",
    table([
      "Scenario",
      "Ours / floor",
      "Ours / BullMQ (best of the repetition)",
      "Our worker's CPU per task / the floor consumer's",
    ], ratios),
    "",
    "In scenario d the floor is the one with batched acks (what our worker does with a high " +
    "prefetch) and BullMQ runs at each concurrency of the sweep in every repetition; ours is " +
    "compared with the fastest of them in that repetition.",
    "",
    "**What is timed**: from the publisher's first publish to the last task completed. Consumers " +
    "are started first and are idle and waiting (readiness: the `worker.online` event for ours, " +
    "a ready line for the others), then the publisher process is spawned; its start-up is " +
    "outside the window, its whole publish phase is inside.",
    "",
    "- **Ours**: the library's `enqueueMany` of N no-op tasks (`bench/_library_publisher.ts`: " +
    "confirm channel, persistent messages) to K `worker.ts` processes with `--prefetch P " +
    "--concurrency C --time-scale 0` on the durable quorum queue they declare. The publisher " +
    "reports its first publish and last confirm as the floor's does; each worker runs " +
    "`bench/_done_handler.ts`, a no-op handler that reports its last task on a stop task " +
    "published after the others, as the floor's consumer does: the end is the last of these.",
    "- **Floor, publisher running**: `bench/_floor_publisher.ts` publishes N persistent messages " +
    "of the same size through a confirm channel (waiting on `drain`, then `waitForConfirms`) to " +
    "a fresh queue declared with exactly our work queue's arguments (quorum, delivery limit, " +
    "at-least-once dead-lettering); K `bench/_bare_consumer.ts` processes with prefetch P ack " +
    "each message. Both connect with `noDelay` (TCP_NODELAY), as our worker and producer do. " +
    "The end is the last ack, reported by the consumers after one end-of-run message each.",
    "- **Floor, filled queue**: the same processes, but the consumers connect and wait; the " +
    "publisher fills the queue and exits; then the consumers are signalled (`SIGUSR1`) and " +
    "drain it. Timed from the signal to the last ack: the consuming side's ceiling, with no " +
    "publisher competing for the CPUs and the broker.",
    "- **Floor, batched acks** (d): as the floor with the publisher running, but each consumer " +
    "acks every delivery received so far with one `ack(message, true)` once the messages of a " +
    "socket read are handled (or every P/2 messages).",
    "- **BullMQ**: `bench/_bullmq_producer.ts` adds N jobs with `Queue.addBulk` (chunks of 1,000, " +
    "`removeOnComplete: true`); K `bench/_bullmq_worker.ts` processes with `concurrency` = P " +
    "(constructed ioredis clients, `maxRetriesPerRequest: null`). The end is the last " +
    "`completed` event in a worker.",
    "- Every run uses a fresh randomly named queue, deleted afterwards.",
    "",
    "<details><summary>Every run</summary>",
    "",
    table([
      "Scenario",
      "System",
      "Rep",
      "Load (1 min)",
      "Completed",
      "Elapsed ms",
      "Tasks/s",
      "Publish ms",
      "Consumers CPU ms",
      "Producer CPU ms",
      "Broker CPU ms",
    ], detail),
    "",
    "Load: the 1-minute load average when the run started. Publish ms: first publish to the last " +
    "confirm (BullMQ: to the last `addBulk` returning). CPU: see CPU per task.",
    "",
    "</details>",
  ].join("\n");
}

function cpuSection(result: SuiteResult): string {
  if (result.throughput.length === 0) return "";
  const rows: string[][] = [];
  for (const t of result.throughput) {
    for (const [key, slots] of Object.entries(t.runs)) {
      const runs = defined(slots);
      const per = (pick: (r: ThroughputRun) => number | undefined) =>
        formatSpread(defined(runs.map((r) => micros(pick(r), r.completed))));
      rows.push([
        t.scenario.key,
        variantLabel(t, key),
        per((r) => r.cpu.consumers),
        per((r) => r.cpu.producer),
        per((r) => r.cpu.broker),
      ]);
    }
  }
  const e = result.environment;
  return [
    "## CPU per task",
    "",
    "Microseconds of CPU (user + system, every thread) per task completed, median (min–max, n):",
    "",
    table(["Scenario", "System", "Consumers µs/task", "Producer µs/task", "Broker µs/task"], rows),
    "",
    "- **How**: `utime + stime` from `/proc/<pid>/stat` (clock ticks of 10 ms: over thousands of " +
    "tasks the error is well under a µs per task). **Consumers** (every worker process of the " +
    "run together) and the **broker** are sampled when the timed window opens (consumers ready, " +
    "before the publisher is spawned; for the filled floor, when the consumers are signalled) " +
    "and when the last completion is seen. The **producer** reports its own CPU time at its " +
    "first publish (on its `bench publishing` line) and " +
    "at its exit (`bench/_exit_probe.ts`, preloaded into every process the benchmark spawns, " +
    "prints its CPU time and peak memory as it ends): its start-up is not counted.",
    `- **Broker**: RabbitMQ's process, found through \`/proc\` as the one listening on the ` +
    `broker's port (${e.brokerProcess ?? "not found: not measured"}); for BullMQ, Redis ` +
    `(${e.redisProcess ?? "not found: not measured"}). The broker also serves anyone else ` +
    "using it during the window (other test runs on a shared machine), which shows as spread.",
    "- The benchmark's own event listener is not counted; it receives one `task.completed` per " +
    "task of ours.",
  ].join("\n");
}

function publishSection(result: SuiteResult): string {
  const p = result.publish;
  if (!p) return "";
  const o = result.options;
  const row = (name: string, runs: (PublishRun | undefined)[], ratios?: number[]) => {
    const done = defined(runs);
    const per = (pick: (r: PublishRun) => number | undefined) =>
      formatSpread(defined(done.map((r) => micros(pick(r), r.count))));
    return [
      name,
      formatSpread(done.map((r) => r.perSecond)),
      ratios ? ratio(ratios) : "–",
      per((r) => r.cpu.producer),
      per((r) => r.cpu.broker),
      done.length ? `${done.filter((r) => r.queued === r.count).length}/${done.length}` : "–",
    ];
  };
  return [
    `## Publishing: ${result.options.publishCount} messages per run`,
    "",
    table([
      "Publisher",
      "Messages/s",
      "Ratio to the floor (per repetition)",
      "Publisher CPU µs/message",
      "Broker CPU µs/message",
      "Runs with every message queued",
    ], [
      row("Floor: raw confirm channel (`bench/_floor_publisher.ts`)", p.floor),
      row("`producer.ts --count N --min 0 --max 0`", p.ours, publishRatios(p, "ours")),
      row(
        `Library \`enqueueMany\`${p.libraryUnavailable ? " (not measured: see Skipped)" : ""}`,
        p.library,
        publishRatios(p, "library"),
      ),
    ]),
    "",
    "Each publisher alone, to a fresh queue with our work queue's arguments and no consumer, the " +
    `three interleaved within each repetition; after ${o.reps} repetitions, more (up to ` +
    `${o.maxReps}) ran while a publisher's per-repetition ratios straddled the goal. Timed ` +
    "from its first publish to the last confirm (ours: its own `Publishing` and `Published … all " +
    "confirmed` log lines; the library: around the `enqueueMany` call in " +
    "`bench/_library_publisher.ts`); then the queue's message count is checked.",
  ].join("\n");
}

function recoverySection(result: SuiteResult): string {
  if (!result.options.scenarios.includes("recovery")) return "";
  const skip = result.skipped.find((s) => s.scenario === "recovery");
  const runs = result.recovery ?? [];
  const body = skip ? [`Not run: ${skip.why}.`] : [
    table(
      ["Restart", "Kill → accepting ms", "Accepting → next task.completed ms", "→ every worker ms"],
      runs.map((r, i) => [
        String(i + 1),
        r.downMs.toFixed(0),
        r.resumeMs.toFixed(0),
        r.allResumedMs.toFixed(0),
      ]),
    ),
    "",
    `Next task.completed: ${formatSpread(runs.map((r) => r.resumeMs), 0, " ms")}; every worker ` +
    `resumed: ${formatSpread(runs.map((r) => r.allResumedMs), 0, " ms")}.`,
  ];
  return [
    "## Recovery after a broker restart",
    "",
    ...body,
    "",
    "A private RabbitMQ node (`lib/operate/local_broker.ts`), 2 workers (`--prefetch 1 --time-scale 0.02`) " +
    "and a backlog of 1,000 tasks of 20 ms. Per restart: once a task has completed, the node's " +
    "quorum metadata is flushed and the node SIGKILLed, then started again on the same data " +
    "dir. Timed from the first moment its port accepts a TCP connection (probed every 10 ms) " +
    "to the next `task.completed` (any worker), and to the moment every worker has completed " +
    "one, by the events' own `at` (read through a durable queue that keeps the events published " +
    "before the benchmark reconnects).",
  ].join("\n");
}

function scaleSection(result: SuiteResult): string {
  const s = result.scale;
  if (!s) return "";
  const row = (name: string, r: typeof s.run) =>
    r
      ? [
        name,
        String(r.tasks),
        r.exitCode === undefined ? "killed" : String(r.exitCode),
        r.summaryPrinted ? "yes" : "no",
        (r.elapsedMs / 1000).toFixed(1),
        r.peakRssKiB === undefined ? "–" : (r.peakRssKiB / 1024).toFixed(1),
      ]
      : [name, "–", "–", "–", "–", "–"];
  const perTask = scalePerTaskKiB(result);
  const failure = s.run?.failure
    ? [`Last error line: \`${s.run.failure.replaceAll("`", "'")}\`.`, ""]
    : [];
  return [
    "## Scale: `produce --wait` over many tasks",
    "",
    table(["Run", "Tasks", "Exit", "Summary printed", "Elapsed s", "Peak RSS MiB"], [
      row("Baseline", s.baseline),
      row("Scale", s.run),
    ]),
    "",
    ...failure,
    `Memory per task beyond the baseline: ${
      perTask === undefined ? "–" : `${perTask.toFixed(3)} KiB`
    } ((peak − baseline peak) / (N − 1)).`,
    "",
    "3 workers (`--time-scale 0`, default prefetch), then `producer.ts --count N --min 0 --max 0 " +
    "--wait`; the baseline is the same with N = 1. Completed: exit code 0 and the line " +
    "`N/N tasks completed` printed. Peak RSS: `VmHWM` of the `--wait` process as it exits " +
    "(`bench/_exit_probe.ts`; if it died without printing, the largest value polled every " +
    "200 ms).",
  ].join("\n");
}

function failoverSection(result: SuiteResult): string {
  const f = result.failover;
  if (!f) return "";
  const row = (name: string, runs: { latencyMs: number }[]) => {
    const values = runs.map((r) => r.latencyMs);
    if (values.length === 0) return [name, "0", "–", "–", "–"];
    const s = summarize(values);
    return [
      name,
      String(values.length),
      s.median.toFixed(1),
      s.p95.toFixed(1),
      `${s.min.toFixed(1)}–${s.max.toFixed(1)}`,
    ];
  };
  return [
    "## Failover latency",
    "",
    "Time from `SIGKILL` of a worker holding a task to that task starting on another, idle worker.",
    "",
    table(["System", "Kills", "p50 ms", "p95 ms", "Min–max ms"], [
      row("Ours", f.ours),
      row("BullMQ (defaults: lockDuration 30 s, stalledInterval 30 s)", f.bullmq),
    ]),
    "",
    "- **Ours**: workers with `--prefetch 1 --concurrency 1` and tasks that last an hour. On a " +
    "fresh queue, two workers and one task; the benchmark waits for `task.started`, kills the " +
    "holder (`SIGKILL`) and times until the next `task.started` of the same task id from the " +
    "other worker (both as received by the benchmark), then spawns a replacement idle worker " +
    "and kills the new holder, up to 4 kills per task (the queue's delivery limit is 5), then " +
    "a fresh queue.",
    "- **BullMQ**: two worker processes (concurrency 1, default lock and stall settings) per " +
    "queue, one job; the one that starts it is killed and the time until the other starts it is " +
    "measured. Redelivery waits for the lock to expire and the next stalled-job check, so it " +
    "takes tens of seconds: the kills are bounded " +
    `(${result.options.bullmqKills} here, \`--bullmq-kills\`) and run at the same time, each on ` +
    "its own queue. With so few kills, p95 is close to the maximum.",
  ].join("\n");
}

function startupSection(result: SuiteResult): string {
  const s = result.startup;
  if (!s) return "";
  const mib = (runs: { rssKiB: number }[]) => runs.map((r) => r.rssKiB / 1024);
  const ms = (runs: { startupMs: number }[]) => runs.map((r) => r.startupMs);
  const ratioOf = (a: number[], b: number[]) =>
    a.length && b.length ? `${(median(a) / median(b)).toFixed(2)}×` : "–";
  return [
    `## Start-up and idle memory: ${result.options.startupReps} repetition(s)`,
    "",
    table(["Process", "Start-up ms", "Idle RSS MiB"], [
      [
        "Bare Deno + amqplib (`bench/_bare_consumer.ts`)",
        formatSpread(ms(s.bare)),
        formatSpread(mib(s.bare), 1),
      ],
      ["Our worker (`worker.ts`)", formatSpread(ms(s.ours)), formatSpread(mib(s.ours), 1)],
      [
        "BullMQ worker (`bench/_bullmq_worker.ts`)",
        formatSpread(ms(s.bullmq)),
        formatSpread(mib(s.bullmq), 1),
      ],
      [
        "Ours / bare (ratio of medians)",
        ratioOf(ms(s.ours), ms(s.bare)),
        ratioOf(mib(s.ours), mib(s.bare)),
      ],
    ]),
    "",
    "Start-up: from spawning `deno run --allow-all <script>` to the ready signal as received by " +
    "the benchmark: the `worker.online` event for our worker, the `bench ready` line (printed " +
    "after `basic.consume` is confirmed) for the bare script, after `waitUntilReady()` for " +
    "BullMQ. The queue exists beforehand in both RabbitMQ cases, so both declare an existing " +
    "queue. Idle RSS: `VmRSS` from `/proc/<pid>/status` read right after the ready signal. One " +
    "unmeasured start of each precedes the measured ones, so every measured start finds warm " +
    "module caches.",
  ].join("\n");
}

function makespanSection(result: SuiteResult): string {
  const m = result.makespan;
  if (!m) return "";
  const scale = result.options.timeScale;
  const rows = (["plain", "killed"] as const).flatMap((key) =>
    m[key].map((r, i) => {
      const sum = r.durationsMs.reduce((a, b) => a + b, 0);
      return [
        key === "plain" ? "no kill" : "kill",
        String(i + 1),
        `${r.completed}/${r.completed + r.lost}`,
        String(r.duplicates),
        (r.makespanMs / 1000).toFixed(2),
        (r.boundMs / 1000).toFixed(2),
        (r.makespanMs / r.boundMs).toFixed(2),
        (sum / 1000).toFixed(2),
        (Math.max(...r.durationsMs) / 1000).toFixed(2),
        r.killedAtMs === undefined ? "–" : (r.killedAtMs / 1000).toFixed(2),
      ];
    })
  );
  const summary = (key: "plain" | "killed") =>
    formatSpread(m[key].map((r) => r.makespanMs / r.boundMs), 2);
  return [
    "## Original scenario: 10 tasks of complexity 1–5 on 3 workers",
    "",
    table([
      "Kill",
      "Rep",
      "Completed",
      "Duplicates",
      "Makespan s",
      "Lower bound s",
      "Makespan / bound",
      "Σ durations s",
      "Longest s",
      "Killed at s",
    ], rows),
    "",
    `Makespan / bound, no kill: ${summary("plain")}; with a kill: ${summary("killed")}.`,
    "",
    `Three workers (\`--prefetch 1 --concurrency 1 --time-scale ${scale}\`), then ` +
    "`producer.ts --count 10 --min 1 --max 5`. Makespan: from the producer's first publish to " +
    "the last `task.completed` received. Lower bound: max(Σ durations / 3, longest), from the " +
    "handler durations of the first `task.completed` of each task. Tasks go to whichever worker " +
    "is free, in publish order, so even a perfect queue can exceed the bound when a long task " +
    "comes last. With a kill: once the first task has completed, the worker that started a task " +
    "last is SIGKILLed and not replaced; its task is redelivered to the two left, so the bound " +
    "(for 3 workers, without the lost work) is not reachable there.",
  ].join("\n");
}

const CALL_LABELS: Record<CallSystem, string> = {
  ours: "Ours: `producer.call`",
  floor: "Floor: bare amqplib request/reply",
  bullmq: "BullMQ: `add` + `waitUntilFinished`",
};

function callSection(result: SuiteResult): string {
  const c = result.call;
  if (!c) return "";
  const o = result.options;
  const rows: string[][] = [];
  for (const k of CALL_IN_FLIGHT) {
    for (const system of CALL_SYSTEMS) {
      const figures = defined(c[system].map((run) => run?.byInFlight[k]));
      if (figures.length === 0) continue;
      rows.push([
        CALL_LABELS[system],
        String(k),
        formatSpread(figures.map((f) => f.p50Ms), 2),
        formatSpread(figures.map((f) => f.p99Ms), 2),
        formatSpread(figures.map((f) => f.maxMs), 1),
        formatSpread(figures.map((f) => f.callsPerSecond)),
      ]);
    }
  }
  const ratios = CALL_IN_FLIGHT.map((k) => [
    String(k),
    ratio(callRatios(c, k, "floor")),
    ratio(callRatios(c, k, "floor", "p99Ms")),
    ratio(callRatios(c, k, "bullmq")),
    ratio(callRatios(c, k, "bullmq", "p99Ms")),
  ]);
  const warmup = o.quick ? 5 : 50;
  return [
    `## Call round trip: ${o.calls} calls per system and number in flight`,
    "",
    table(["System", "In flight", "p50 ms", "p99 ms", "Max ms", "Calls/s"], rows),
    "",
    "Ratios of ours to the others, taken within each repetition, median (min–max, n):",
    "",
    table([
      "In flight",
      "Ours / floor, p50",
      "Ours / floor, p99",
      "Ours / BullMQ, p50",
      "Ours / BullMQ, p99",
    ], ratios),
    "",
    "**What is timed**: each call from just before it is made to its result in the caller's " +
    "hands; p50, p99 and max over the calls of a run, then the median (min–max, n = " +
    "repetitions) of those. Per system and repetition, on a fresh queue: a responder process, " +
    "started first and ready, then a caller process (`bench/_call_client.ts`) that makes " +
    `${warmup} calls one at a time, not measured, then ${o.calls} calls with one in flight (the ` +
    `next starts when the last has returned), then ${o.calls} with 10 in flight (10 such loops). ` +
    "Every result is checked. The systems ran one after the other in each repetition, in an " +
    `order rotated every repetition; after ${o.reps} repetitions, more (up to ${o.maxReps}) ran ` +
    "while a goal's per-repetition ratios straddled it.",
    "",
    "- **Ours**: `createProducer` and `producer.call({ seq })` to one `worker.ts` " +
    `(\`--prefetch ${CALL_PREFETCH} --concurrency ${CALL_PREFETCH}\`) whose handler ` +
    '(`bench/_result_handler.ts`) returns `{"ok":true}`. The task goes persistent, through a ' +
    "confirm channel, to the quorum work queue with `reply_to` naming the producer's reply " +
    "queue (quorum); the worker publishes the result there, waits for its confirm, then acks " +
    "the task; the producer consumes its reply queue (prefetch 1,000, one ack each).",
    "- **Floor**: the same messages with plain amqplib and nothing else: the caller publishes " +
    "a persistent request through a confirm channel to a quorum queue declared with our work " +
    "queue's arguments, with `reply_to` and `correlation_id`; `bench/_bare_responder.ts` " +
    `(prefetch ${CALL_PREFETCH}) publishes a persistent reply through a confirm channel to ` +
    "the caller's quorum reply queue and acks the request once the reply is confirmed; the " +
    "caller consumes its reply queue (prefetch 1,000, one ack each). A call returns once its " +
    "publish is confirmed and its reply has come. Every connection with `noDelay`.",
    "- **BullMQ**: `queue.add` then `job.waitUntilFinished(queueEvents)` on the local Redis, to " +
    `a worker process (\`bench/_bullmq_worker.ts --mode result\`, concurrency ${CALL_PREFETCH}) ` +
    'returning `{"ok":true}`; constructed ioredis clients. Completed jobs are removed beyond ' +
    "the last 1,000 (`removeOnComplete: { count: 1000 }`): with `removeOnComplete: true` a job " +
    "can be gone before `waitUntilFinished` looks at it, which then throws `Missing key for " +
    "job`.",
    `- Why BullMQ can be faster: ${CALL_BULLMQ_REASON}.`,
    "- Why ours can be faster than the floor: not investigated. Our connections write what " +
    "amqplib's multiplexer has in one pass in one socket write (`lib/core/corking.ts`); the " +
    "floor's do not.",
  ].join("\n");
}

/** One row of the delays table: rates, lateness and CPU per task of `slots`' runs. */
function delaysRow(name: string, slots: (DelaysRun | undefined)[]): string[] {
  const runs = defined(slots);
  const per = (pick: (r: DelaysRun) => number | undefined) =>
    formatSpread(defined(runs.map((r) => micros(pick(r), r.completed))));
  const late = (pick: (l: NonNullable<DelaysRun["lateness"]>) => number) =>
    formatSpread(defined(runs.map((r) => r.lateness && pick(r.lateness))));
  return [
    name,
    formatSpread(runs.map((r) => r.publishPerSecond)),
    formatSpread(runs.map((r) => r.deliveryPerSecond)),
    late((l) => l.p50),
    late((l) => l.p99),
    late((l) => l.max),
    runs.some((r) => r.lateness) ? String(runs.reduce((n, r) => n + r.lateness!.early, 0)) : "–",
    per((r) => r.cpu.broker),
    per((r) => r.cpu.brokerPublishing),
    per((r) => r.cpu.worker),
  ];
}

/** The delays scenario's every run, in a folded table. */
function delaysDetail(d: DelaysResult): string {
  const ms = (v: number | undefined, scale = 1) => v === undefined ? "–" : (v * scale).toFixed(0);
  const rows = (["delayed", "undelayed"] as const).flatMap((mode) =>
    d[mode].flatMap((r, rep) =>
      r
        ? [[
          mode,
          String(rep + 1),
          r.loadAverage.toFixed(2),
          `${r.completed}/${r.tasks}`,
          ms(r.publishMs),
          ms(r.deliverySpanMs),
          ms(r.dueSpanMs),
          ms(r.elapsedMs),
          ms(r.cpu.broker, 1000),
          ms(r.cpu.worker, 1000),
        ]]
        : []
    )
  );
  return [
    "<details><summary>Every run</summary>",
    "",
    table([
      "Run",
      "Rep",
      "Load (1 min)",
      "Started",
      "Publish ms",
      "Delivery span ms",
      "Due span ms",
      "First publish → last start ms",
      "Broker CPU ms",
      "Worker CPU ms",
    ], rows),
    "",
    "</details>",
  ].join("\n");
}

/** Delayed over undelayed, and the span over which the delayed tasks fell due. */
function delaysComparison(d: DelaysResult): string {
  const reps = Math.max(d.delayed.length, d.undelayed.length);
  const over = (pick: (r: DelaysRun) => number | undefined) =>
    ratio(
      ratiosPerRep(reps, (r) =>
        d.delayed[r] && pick(d.delayed[r]), (r) =>
        d.undelayed[r] && pick(d.undelayed[r])),
    );
  const cpuPerTask = (r: DelaysRun) => micros(r.cpu.broker, r.completed);
  const dueSpans = defined(defined(d.delayed).map((r) => r.dueSpanMs));
  return `Delayed over undelayed, within each repetition: publish rate ${
    over((r) => r.publishPerSecond)
  }; broker CPU per task ${over(cpuPerTask)}.` +
    (dueSpans.length
      ? ` The delayed tasks fell due over ${
        formatSpread(dueSpans.map((x) => x / 1000), 1, " s")
      } (first due to last due): a delivery rate near N over that span, with small lateness, ` +
        "means the ladder kept pace with them."
      : "");
}

function delaysSection(result: SuiteResult): string {
  const d = result.delays;
  if (!d) return "";
  const o = result.options;
  const ladder = defined(d.delayed).find((r) => r.ladder)?.ladder;
  return [
    `## Delayed tasks: ${o.delayTasks} tasks, delays uniform from 0 to ${o.maxDelayMs / 1000} s`,
    "",
    table([
      "Run",
      "Publish tasks/s",
      "Delivery tasks/s",
      "Lateness p50 ms",
      "Lateness p99 ms",
      "Lateness max ms",
      "Early",
      "Broker CPU µs/task",
      "Broker CPU µs/task, publishing",
      "Worker CPU µs/task",
    ], [
      delaysRow("Delayed (the ladder)", d.delayed),
      delaysRow("Undelayed (reference)", d.undelayed),
    ]),
    "",
    delaysComparison(d),
    "",
    "Every delayed task crosses up to 25 quorum queues (the ladder, `lib/core/delays.ts`), one " +
    "per 1 bit of its delay in 100 ms units, each a write (its publish, then an at-least-once " +
    "dead-lettering from one level to the next), before its write to the work queue" +
    (ladder
      ? `; the delays drawn here cross ${ladder.mean.toFixed(1)} on average (at most ` +
        `${ladder.most})`
      : "") +
    ". It enters the ladder at the level of its highest 1 bit; between two of its queues it is " +
    "routed through the topic exchange of each level in between.",
    "",
    "**What is timed**: one worker (`worker.ts " +
    `--prefetch ${DELAYS_PREFETCH} --concurrency ${DELAYS_PREFETCH}\`, handler ` +
    "`bench/_delay_handler.ts`, a no-op that notes each task's start), online first; then " +
    "`bench/_delay_publisher.ts`: `createProducer`, one delayed warm-up task (so that the ladder " +
    "is declared on its connection before the timing; not counted), then one `enqueueMany` of " +
    `the N tasks with \`{ delay }\` drawn uniformly from 0 to ${o.maxDelayMs} ms by a seeded ` +
    "generator (the same delays every run), each payload holding the time it is due (when it " +
    "was enqueued, plus its delay). **Publish**: N over the first publish to the last confirm. " +
    "**Delivery**: N over the first task's start to the last one's, as the handler reports " +
    "them. **Lateness**: start − due, per task; early: more than " +
    `${EARLY_TOLERANCE_MS} ms before its time. **Undelayed**: the same N tasks without a delay, ` +
    "to a fresh queue and worker. **Broker CPU**: RabbitMQ's process from the first publish " +
    "(the publisher's line as read) to the last start (and, publishing, to the last confirm), " +
    "per task; it counts anyone else using the broker meanwhile. The runs of a repetition " +
    "alternate their order. The ladder is shared by every queue of the virtual host: run this " +
    "where no one else uses delays (another virtual host in `AMQP_URL`), or both are slowed.",
    "",
    delaysDetail(d),
  ].join("\n");
}

function clusterSection(result: SuiteResult): string {
  if (!result.options.scenarios.includes("cluster")) {
    return "## Cluster\n\nNot run: the cluster scenario runs only with `--only cluster` " +
      "(it starts three private RabbitMQ nodes, about 400 MiB).";
  }
  const skip = result.skipped.find((s) => s.scenario === "cluster");
  const runs = result.cluster ?? [];
  const rows = (["leader", "follower"] as const).map((target) => {
    const of = runs.filter((r) => r.target === target);
    const times = of.map((r) => r.resumeMs);
    return [
      `The ${target}'s node`,
      String(of.length),
      times.length ? median(times).toFixed(0) : "–",
      times.length ? maximum(times).toFixed(0) : "–",
      String(of.reduce((n, r) => n + r.published, 0)),
      String(of.reduce((n, r) => n + r.lost, 0)),
      String(of.reduce((n, r) => n + r.duplicates, 0)),
    ];
  });
  return [
    "## Cluster: SIGKILL of a node under load",
    "",
    skip ? `Not run: ${skip.why}.` : table([
      "Killed",
      "Kills",
      "Kill → next task started and completed, p50 ms",
      "Max ms",
      "Tasks",
      "Lost",
      "Duplicated",
    ], rows),
    "",
    "`lib/operate/local_cluster.ts` starts three clustered private nodes; 3 workers get the three URLs as " +
    "one comma-separated `AMQP_URL` (`--prefetch 1 --time-scale 0.02`). Per kill, alternating " +
    "the quorum queue's leader node and a follower's: 600 tasks of 20 ms are published and " +
    "confirmed through a node that survives, 30 complete, the target's quorum metadata is " +
    "flushed, its `beam.smp` SIGKILLed and the node started again at once. Timed from the kill " +
    "to the first `task.completed` of a task whose handler started after the kill (the tasks in " +
    "hand at the kill complete regardless), by the event's own `at`; the benchmark's event " +
    "queues live on a surviving node. Then the batch is awaited: lost = confirmed tasks never " +
    "completed, duplicated = completions beyond the first.",
  ].join("\n");
}

/** Renders the whole report as Markdown. */
export function renderReport(result: SuiteResult): string {
  const o = result.options;
  const command = o.commandLine ?? "deno task bench";
  const sections = [
    "# Benchmarks",
    "",
    `Generated by \`${command}\`` +
    (o.quick ? " (**quick mode**: tiny sizes, not meaningful figures)" : "") +
    ". Figures are medians with the spread (min–max) and the number of repetitions in brackets; " +
    "a ratio is taken within each repetition, then summarized the same way. The machine has few " +
    "cores shared by the broker, Redis, the benchmark and every process it spawns (and by " +
    "anything else running on it: see the load averages), so timings are noisy: compare ratios " +
    "measured in the same run rather than absolute figures across runs.",
    "",
    environmentSection(result),
    targetsSection(result),
    throughputSection(result),
    cpuSection(result),
    publishSection(result),
    recoverySection(result),
    scaleSection(result),
    failoverSection(result),
    startupSection(result),
    makespanSection(result),
    callSection(result),
    delaysSection(result),
    clusterSection(result),
  ].filter((s) => s !== "");
  if (result.skipped.length) {
    sections.push(
      `## Skipped\n\n${result.skipped.map((s) => `- ${s.scenario}: ${s.why}`).join("\n")}`,
    );
  }
  if (result.errors.length) {
    sections.push(`## Errors\n\n${result.errors.map((e) => `- ${e}`).join("\n")}`);
  }
  if (result.notes.length) {
    sections.push(`## Notes\n\n${result.notes.map((n) => `- ${n}`).join("\n")}`);
  }
  return `${sections.join("\n\n")}\n`;
}
