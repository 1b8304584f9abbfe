/**
 * Turns a {@linkcode SuiteResult} into BENCHMARKS.md: environment, targets met or not with
 * reasons, and every figure as median with its spread (min–max).
 * @module
 */
import { pairedRatios, quantile, summarize } from "./_stats.ts";
import type { ThroughputRun } from "./_results.ts";
import type { SuiteResult, SystemName, ThroughputResult } from "./suite.ts";

/** Target: our throughput at least this fraction of the floor's, same prefetch and queue type. */
export const THROUGHPUT_TARGET = 0.8;
/** Target: failover p50 at most this many ms. */
export const FAILOVER_TARGET_MS = 50;
/** Target: our start-up at most this many times the bare script's. */
export const STARTUP_TARGET = 2;
/** Target: our idle RSS at most this many times the bare script's. */
export const RSS_TARGET = 1.5;

/** One target, evaluated. */
export interface TargetCheck {
  /** What is compared. */
  name: string;
  /** The goal, in words. */
  goal: string;
  /** The measured figure, formatted. */
  measured: string;
  /** Met, not met, or not measured. */
  met: boolean | undefined;
  /** Why, when not met (or not measured). */
  reason: string;
}

/** `median (min–max)` of `values` with `digits` decimals; just the value when there is one. */
export function formatSpread(values: readonly number[], digits = 0): string {
  if (values.length === 0) return "–";
  const s = summarize(values);
  const f = (x: number) => x.toFixed(digits);
  return values.length === 1 ? f(s.median) : `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
}

function defined<T>(values: readonly (T | undefined)[]): T[] {
  return values.filter((v): v is T => v !== undefined);
}

function rates(runs: readonly (ThroughputRun | undefined)[]): number[] {
  return defined(runs).map((r) => r.tasksPerSecond);
}

/** Per-repetition ratios of `a`'s throughput to `b`'s (repetitions where both ran). */
export function throughputRatios(result: ThroughputResult, a: SystemName, b: SystemName): number[] {
  const x = result.runs[a];
  const y = result.runs[b];
  const n = Math.max(x.length, y.length);
  const xs: number[] = [];
  const ys: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = x[i];
    const q = y[i];
    if (p && q) {
      xs.push(p.tasksPerSecond);
      ys.push(q.tasksPerSecond);
    }
  }
  return pairedRatios(xs, ys);
}

function ratioCell(ratios: readonly number[]): string {
  return ratios.length === 0 ? "–" : formatSpread(ratios, 2).replace(/^(\S+)/, "$1×");
}

/** Why our throughput trails the floor's: what our worker does per task beyond ack. */
export const THROUGHPUT_REASON = "per task our worker makes the broker and the CPUs do more " +
  "than the floor's consumer does. Besides the delivery and the ack it publishes a task.started " +
  "and a task.completed event to the topic exchange <queue>.events (the benchmark's listener " +
  "also receives every task.completed); in a trial run without task.started the ratios rose by " +
  "about 0.07 (a: 0.80×, b: 0.67×, c: 0.69×). The broker, the producer and the workers share 2 " +
  "cores, so the worker's own CPU counts too: over 10,000 no-op tasks at prefetch 1 our worker " +
  "process spends about 210 µs of CPU per task against 100 µs for the bare consumer. Body " +
  "validation, the trace span and the task timer cost about 10 µs together (micro-benchmarked); " +
  "what remains is, by a V8 profile, mostly amqplib encoding the two event publishes and Deno's Node-compatible socket " +
  "sending them, one write each. The events are the price of --wait, status, the timeline and " +
  "the tests' view of the system. Fixed while profiling: TCP_NODELAY (without it every ack " +
  "waited ~40 ms for a delayed TCP ACK: 20 tasks/s), events moved off the confirm channel, and " +
  "no timer for zero-length work. Per-task info log lines cost a further ~40 % at prefetch 1 " +
  "when stderr is a pipe, which is why the workers here run with LOG_LEVEL=warning (see the " +
  "command line above)";

/** Why BullMQ is faster, and what a user can trade. */
export const BULLMQ_REASON = "BullMQ keeps jobs in a Redis that here keeps nothing on disk (no " +
  "RDB, no AOF), so a Redis crash loses every queued job; our tasks sit in a quorum queue, " +
  "fsync'd to disk before the publish is confirmed, and survive a broker crash. BullMQ also " +
  "batches enqueueing (addBulk) and fetches the next job in the same round trip as the " +
  "completion. To trade safety for speed with tareas: raise --concurrency (prefetch) for short " +
  "tasks (scenario b), run more workers, and set LOG_LEVEL=warning; a classic queue or " +
  "transient messages would be faster still but lose the crash guarantees this project exists " +
  "for, so tareas does not offer them";

/** Evaluates the four targets of the issue against `result`. */
export function checkTargets(result: SuiteResult): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const t of result.throughput) {
    const ratios = throughputRatios(t, "ours", "floor");
    const median = ratios.length ? quantile(ratios, 0.5) : undefined;
    checks.push({
      name: `Throughput ${t.scenario.key}: ${t.scenario.title}`,
      goal: `ours ≥ ${THROUGHPUT_TARGET}× floor`,
      measured: ratioCell(ratios),
      met: median === undefined ? undefined : median >= THROUGHPUT_TARGET,
      reason: median === undefined
        ? "not measured"
        : median >= THROUGHPUT_TARGET
        ? ""
        : `ours reaches ${(median * 100).toFixed(0)} % of the floor`,
    });
  }
  if (result.failover) {
    const ours = result.failover.ours.map((r) => r.latencyMs);
    const p50 = ours.length ? quantile(ours, 0.5) : undefined;
    checks.push({
      name: "Failover latency (ours)",
      goal: `p50 ≤ ${FAILOVER_TARGET_MS} ms`,
      measured: p50 === undefined ? "–" : `p50 ${p50.toFixed(1)} ms over ${ours.length} kills`,
      met: p50 === undefined ? undefined : p50 <= FAILOVER_TARGET_MS,
      reason: p50 === undefined
        ? "not measured"
        : p50 <= FAILOVER_TARGET_MS
        ? ""
        : "the broker requeues the task when the killed worker's TCP connection closes; the " +
          "rest is the idle worker's receive, decode and task.started publish",
    });
  }
  if (result.startup) {
    const { bare, ours } = result.startup;
    const ratio = (pick: (r: { startupMs: number; rssKiB: number }) => number) =>
      bare.length && ours.length
        ? quantile(ours.map(pick), 0.5) / quantile(bare.map(pick), 0.5)
        : undefined;
    const startup = ratio((r) => r.startupMs);
    const rss = ratio((r) => r.rssKiB);
    checks.push({
      name: "Start-up to worker.online",
      goal: `≤ ${STARTUP_TARGET}× the bare script`,
      measured: startup === undefined ? "–" : `${startup.toFixed(2)}×`,
      met: startup === undefined ? undefined : startup <= STARTUP_TARGET,
      reason: startup === undefined
        ? "not measured"
        : startup <= STARTUP_TARGET
        ? ""
        : "our worker loads more modules (logging, configuration, topology, handler) and " +
          "declares its queues, dead-letter queue and events exchange on two channels before " +
          "it is online",
    });
    checks.push({
      name: "Idle RSS",
      goal: `≤ ${RSS_TARGET}× the bare script`,
      measured: rss === undefined ? "–" : `${rss.toFixed(2)}×`,
      met: rss === undefined ? undefined : rss <= RSS_TARGET,
      reason: rss === undefined
        ? "not measured"
        : rss <= RSS_TARGET
        ? ""
        : "our worker loads more modules (logging, configuration, topology, handler) than " +
          "the bare script",
    });
  }
  return checks;
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

function flagsOf(result: SuiteResult): string {
  const o = result.options;
  return [
    o.quick ? "--quick" : "",
    `--tasks ${o.tasks}`,
    `--reps ${o.reps}`,
    `--startup-reps ${o.startupReps}`,
    `--kills ${o.kills}`,
    `--bullmq-kills ${o.bullmqKills}`,
    `--time-scale ${o.timeScale}`,
    o.workerLogLevel ? `--worker-log-level ${o.workerLogLevel}` : "",
    o.scenarios.length < 4 ? `--only ${o.scenarios.join(",")}` : "",
    o.systems.length < 3 ? `--systems ${o.systems.join(",")}` : "",
  ].filter(Boolean).join(" ");
}

function environmentSection(result: SuiteResult): string {
  const e = result.environment;
  const rows = [
    ["Date", e.date],
    ["CPU", `${e.cpu}, ${e.cores} logical cores`],
    ["Memory", `${e.memoryGiB.toFixed(1)} GiB`],
    ["OS", e.os],
    ["Runtime", e.deno],
    ["Broker", e.broker],
    ["Redis", e.redis],
    [
      "Packages",
      Object.entries(e.packages).map(([n, v]) => `${n} ${v.replace(/^.*@/, "")}`)
        .join(", "),
    ],
    ["Commit", e.commit ?? "none"],
    ["Load average (1, 5, 15 min) at start", e.loadAverage.map((x) => x.toFixed(2)).join(", ")],
    ["Load average at end", result.finalLoadAverage.map((x) => x.toFixed(2)).join(", ")],
  ];
  return `## Machine\n\n${table(["", ""], rows)}`;
}

function targetsSection(result: SuiteResult): string {
  const checks = checkTargets(result);
  if (checks.length === 0) return "";
  const rows = checks.map((c) => [
    c.name,
    c.goal,
    c.measured,
    c.met === undefined ? "not measured" : c.met ? "**met**" : "**not met**",
  ]);
  const reasons = checks.filter((c) => c.met === false)
    .map((c) => `- ${c.name}, not met: ${c.reason}.`);
  if (checks.some((c) => c.met === false && c.name.startsWith("Throughput"))) {
    reasons.push(`- Why throughput trails the floor: ${THROUGHPUT_REASON}.`);
  }
  if (result.throughput.some((t) => throughputRatios(t, "ours", "bullmq").length > 0)) {
    reasons.push(`- Why BullMQ is faster: ${BULLMQ_REASON}.`);
  }
  return [
    "## Targets",
    "",
    table(["Target", "Goal", "Measured (median, min–max)", "Status"], rows),
    ...(reasons.length ? ["", ...reasons] : []),
  ].join("\n");
}

function throughputSection(result: SuiteResult): string {
  if (result.throughput.length === 0) return "";
  const o = result.options;
  const rows = result.throughput.map((t) => [
    `${t.scenario.key}. ${t.scenario.title}`,
    formatSpread(rates(t.runs.ours)),
    formatSpread(rates(t.runs.floor)),
    formatSpread(rates(t.runs.bullmq)),
    ratioCell(throughputRatios(t, "ours", "floor")),
    ratioCell(throughputRatios(t, "ours", "bullmq")),
  ]);
  const detail: string[][] = [];
  for (const t of result.throughput) {
    for (const system of ["ours", "floor", "bullmq"] as const) {
      t.runs[system].forEach((run, rep) => {
        if (!run) return;
        detail.push([
          t.scenario.key,
          system,
          String(rep + 1),
          `${run.completed}/${run.tasks}`,
          run.elapsedMs.toFixed(0),
          run.tasksPerSecond.toFixed(0),
          run.publishMs === undefined ? "–" : run.publishMs.toFixed(0),
          run.startLagMs === undefined ? "–" : run.startLagMs.toFixed(0),
        ]);
      });
    }
  }
  return [
    `## Throughput: ${o.tasks} no-op tasks, ${o.reps} repetition(s)`,
    "",
    "Tasks per second, median (min–max) over the repetitions. The ratio columns are the median " +
    "(min–max) of ratios taken within each repetition, where the systems ran one after the other.",
    "",
    table([
      "Scenario",
      "Ours tasks/s",
      "Floor tasks/s",
      "BullMQ tasks/s",
      "Ours / floor",
      "Ours / BullMQ",
    ], rows),
    "",
    "**What is timed**: from the publisher's first publish to the last task completed. Consumers " +
    "are started first and are idle and waiting (readiness: `worker.online` event for ours, a " +
    "ready line for the others), then the publisher process is spawned; its start-up is outside " +
    "the window, its whole publish phase is inside.",
    "",
    "- **Ours**: `producer.ts --count N --min 0 --max 0` (confirm channel, persistent messages) " +
    "to K `worker.ts` processes with `--prefetch P --concurrency C --time-scale 0` on the durable " +
    "quorum queue they declare. The first publish is reported by `bench/_publish_hook.ts`, " +
    "preloaded into the unmodified producer; the end is the last `task.completed` event received " +
    "by the benchmark (an exclusive queue bound to `<queue>.events` for `task.completed`).",
    "- **Floor**: `bench/_floor_publisher.ts` publishes N persistent messages of the same size " +
    "through a confirm channel (waiting on `drain`, then `waitForConfirms`) to a fresh durable " +
    "quorum queue; K `bench/_bare_consumer.ts` processes with prefetch P ack each message. The " +
    "end is the last ack, reported by the consumers after one end-of-run message each.",
    "- **BullMQ**: `bench/_bullmq_producer.ts` adds N jobs with `Queue.addBulk` (chunks of 1,000, " +
    "`removeOnComplete: true`); K `bench/_bullmq_worker.ts` processes with `concurrency` = P " +
    "(constructed ioredis clients, `maxRetriesPerRequest: null`). The end is the last " +
    "`completed` event in a worker.",
    "- Every run uses a fresh randomly named queue, deleted afterwards. Scenario b gives BullMQ " +
    "concurrency 10 and the floor prefetch 10; the floor has no concurrency setting.",
    "",
    "<details><summary>Every run</summary>",
    "",
    table([
      "Scenario",
      "System",
      "Rep",
      "Completed",
      "Elapsed ms",
      "Tasks/s",
      "Publish ms",
      "Publish → first start ms",
    ], detail),
    "",
    "Publish ms: first publish to all confirmed (ours: as logged by the producer, from its " +
    "connection). Publish → first start: when the first task began on a consumer (floor, BullMQ).",
    "",
    "</details>",
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
    "other worker (both as received by the benchmark's event queue), then spawns a replacement " +
    "idle worker and kills the new holder, up to 4 kills per task (the queue's delivery limit is " +
    "5), then a fresh queue.",
    "- **BullMQ**: two worker processes (concurrency 1, default lock and stall settings) per " +
    "queue, one job; the one that starts it is killed and the time until the other starts it is " +
    "measured. Redelivery waits for the lock to expire and the next stalled-job check, so it takes " +
    "tens of seconds: the kills are bounded " +
    `(${result.options.bullmqKills} here, \`--bullmq-kills\`) and run at the same time, each on ` +
    "its own queue. With so few kills, p95 is close to the maximum.",
  ].join("\n");
}

function startupSection(result: SuiteResult): string {
  const s = result.startup;
  if (!s) return "";
  const mib = (runs: { rssKiB: number }[]) => runs.map((r) => r.rssKiB / 1024);
  const ms = (runs: { startupMs: number }[]) => runs.map((r) => r.startupMs);
  const ratio = (a: number[], b: number[]) =>
    a.length && b.length ? `${(quantile(a, 0.5) / quantile(b, 0.5)).toFixed(2)}×` : "–";
  return [
    `## Start-up and idle memory: ${result.options.startupReps} repetition(s)`,
    "",
    table(["Process", "Start-up ms", "Idle RSS MiB"], [
      [
        "Bare Deno + amqplib (`bench/_bare_consumer.ts`)",
        formatSpread(ms(s.bare)),
        formatSpread(
          mib(s.bare),
          1,
        ),
      ],
      ["Our worker (`worker.ts`)", formatSpread(ms(s.ours)), formatSpread(mib(s.ours), 1)],
      [
        "BullMQ worker (`bench/_bullmq_worker.ts`)",
        formatSpread(ms(s.bullmq)),
        formatSpread(
          mib(s.bullmq),
          1,
        ),
      ],
      [
        "Ours / bare (ratio of medians)",
        ratio(ms(s.ours), ms(s.bare)),
        ratio(
          mib(s.ours),
          mib(s.bare),
        ),
      ],
    ]),
    "",
    "Start-up: from spawning `deno run --allow-all <script>` to the ready signal as received by " +
    "the benchmark: the `worker.online` event for our worker, the `bench ready` line (printed " +
    "after `basic.consume` is confirmed) for the bare script, after `waitUntilReady()` for BullMQ. " +
    "The queue exists beforehand in both RabbitMQ cases, so both declare an existing queue. Idle " +
    "RSS: `VmRSS` from `/proc/<pid>/status` read right after the ready signal. One unmeasured start " +
    "of each precedes the measured ones, so every measured start finds warm module caches.",
  ].join("\n");
}

function makespanSection(result: SuiteResult): string {
  const runs = result.makespan;
  if (!runs) return "";
  const scale = result.options.timeScale;
  const rows = runs.map((r, i) => {
    const sum = r.durationsMs.reduce((a, b) => a + b, 0);
    return [
      String(i + 1),
      String(r.completed),
      (r.makespanMs / 1000).toFixed(2),
      (r.boundMs / 1000).toFixed(2),
      (r.makespanMs / r.boundMs).toFixed(2),
      (sum / 1000).toFixed(2),
      (Math.max(...r.durationsMs) / 1000).toFixed(2),
    ];
  });
  const ratios = runs.map((r) => r.makespanMs / r.boundMs);
  return [
    "## Original scenario: 10 tasks of complexity 1–5 on 3 workers",
    "",
    table([
      "Rep",
      "Completed",
      "Makespan s",
      "Lower bound s",
      "Makespan / bound",
      "Σ durations s",
      "Longest s",
    ], rows),
    "",
    `Median makespan / bound: ${ratios.length ? formatSpread(ratios, 2) : "–"}.`,
    "",
    `Three workers (\`--prefetch 1 --concurrency 1 --time-scale ${scale}\`), then ` +
    "`producer.ts --count 10 --min 1 --max 5`. Makespan: from the producer's first publish to " +
    "the last `task.completed` received. Lower bound: max(Σ durations / 3, longest), from the " +
    "handler durations the `task.completed` events report. Tasks go to whichever worker is free, " +
    "in publish order, so even a perfect queue can exceed the bound when a long task comes last.",
  ].join("\n");
}

/** Renders the whole report as Markdown. */
export function renderReport(result: SuiteResult): string {
  const sections = [
    "# Benchmarks",
    "",
    `Generated by \`deno task bench ${flagsOf(result)}\`` +
    (result.options.quick ? " (**quick mode**: tiny sizes, not meaningful figures)" : "") +
    ". Figures are medians with the spread (min–max) over the repetitions in brackets. The " +
    "machine has few cores shared by the broker, Redis, the benchmark and every process it " +
    "spawns, so timings are noisy: compare ratios measured in the same run rather than absolute " +
    "figures across runs.",
    "",
    environmentSection(result),
    targetsSection(result),
    throughputSection(result),
    failoverSection(result),
    startupSection(result),
    makespanSection(result),
  ].filter((s) => s !== "");
  if (result.errors.length) {
    sections.push(`## Errors\n\n${result.errors.map((e) => `- ${e}`).join("\n")}`);
  }
  if (result.notes.length) {
    sections.push(`## Notes\n\n${result.notes.map((n) => `- ${n}`).join("\n")}`);
  }
  return `${sections.join("\n\n")}\n`;
}
