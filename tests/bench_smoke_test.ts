/**
 * Smoke test of the benchmark suite (`deno task bench`): runs it in quick mode (50 tasks, one
 * repetition, tiny publish and scale runs, one broker restart, no BullMQ failover, 20 calls per
 * system, 200 tasks delayed up to 2 s) against the real broker and Redis, and checks that every
 * scenario ran, that the counts match (every call answered, every delayed task started, none
 * early), that CPU and memory were measured, and that the report is well formed. It asserts no
 * timing: the figures of a quick run on a shared machine mean nothing.
 */
import assert from "node:assert/strict";
import { parseBenchArgs } from "../bench/main.ts";
import { parseCpuTicks, parseStatusKiB } from "../bench/_procfs.ts";
import { formatSpread, renderReport } from "../bench/report.ts";
import { quantile, summarize } from "../bench/_stats.ts";
import { ratiosPerRep, straddles } from "../bench/_targets.ts";
import type { PublishRun } from "../bench/_results.ts";
import {
  CALL_IN_FLIGHT,
  CALL_SYSTEMS,
  type CallFigures,
  callFigures,
  type CallRun,
} from "../bench/call.ts";
import { latenessOf } from "../bench/delays.ts";
import { ladderQueues, seeded } from "../bench/_delay_publisher.ts";
import {
  BULLMQ_SWEEP,
  callRatios,
  type CallResult,
  callVerdictOpen,
  publishVerdictOpen,
  runSuite,
  type SuiteOptions,
  THROUGHPUT_SCENARIOS,
} from "../bench/suite.ts";
import { canStartPrivateNode } from "../lib/operate/local_broker.ts";
import { brokerUrl, run } from "../testing/scenario.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

Deno.test({
  name: "summary statistics interpolate between ranks",
  ...options,
  fn() {
    assert.equal(quantile([4, 1, 3, 2], 0.5), 2.5);
    assert.equal(quantile([10], 0.95), 10);
    assert.equal(quantile([1, 2, 3, 4, 5], 0.95), 4.8);
    assert.deepEqual(summarize([3, 1, 2]), { n: 3, median: 2, min: 1, max: 3, p95: 2.9 });
    assert.throws(() => quantile([], 0.5), RangeError);
  },
});

Deno.test({
  name: "figures are printed with their spread and count, ratios per repetition",
  ...options,
  fn() {
    assert.equal(formatSpread([9.2, 7.3, 14], 1, " ms"), "9.2 ms (7.3–14.0 ms, n=3)");
    assert.equal(formatSpread([0.5], 2, "×"), "0.50× (n=1)");
    assert.equal(formatSpread([]), "–");
    const a = [10, 20, undefined, 40];
    const b = [5, 10, 10, undefined];
    assert.deepEqual(ratiosPerRep(4, (r) => a[r], (r) => b[r]), [2, 2]);
    assert.equal(straddles([0.8, 1.0], 0.9), true, "one repetition each side: still open");
    assert.equal(straddles([0.95, 1.0], 0.9), false);
    assert.equal(straddles([], 0.9), true, "nothing measured: open");
    const at = (perSecond: number) => ({ perSecond }) as PublishRun;
    const publish = { floor: [at(100), at(100)], ours: [at(85), at(95)], library: [] };
    assert.equal(publishVerdictOpen(publish), true, "ours at 0.85× and 0.95×: open");
    publish.ours = [at(95), at(99)];
    assert.equal(publishVerdictOpen(publish), false, "a library that never ran keeps nothing open");
  },
});

Deno.test({
  name: "call and delay figures: percentiles, ratios per repetition, lateness and the ladder",
  ...options,
  fn() {
    const { p99Ms, ...figures } = callFigures([4, 1, 3, 2], 20);
    assert.deepEqual(figures, { calls: 4, p50Ms: 2.5, maxMs: 4, callsPerSecond: 200 });
    assert.equal(p99Ms.toFixed(2), "3.97");
    const at = (p50Ms: number) =>
      ({ byInFlight: { 1: { p50Ms }, 10: { p50Ms } } }) as unknown as CallRun;
    // Ours at 1.5× and 2.5× the floor: the 2× goal is still open; a BullMQ that never ran is not.
    const call: CallResult = { ours: [at(3), at(5)], floor: [at(2), at(2)], bullmq: [] };
    assert.deepEqual(callRatios(call, 1, "floor"), [1.5, 2.5]);
    assert.deepEqual(callRatios(call, 1, "bullmq"), []);
    assert.equal(callVerdictOpen(call), true);
    call.ours = [at(3), at(3)];
    assert.equal(callVerdictOpen(call), false);
    // Starts 2 ms early, 1 ms early (clock rounding: not early), on time and late.
    const { p99, ...lateness } = latenessOf([-2, -1, 0, 500]);
    assert.deepEqual(lateness, { p50: -0.5, max: 500, min: -2, early: 1 });
    assert.equal(p99.toFixed(2), "485.00");
    assert.equal(ladderQueues(0), 0);
    assert.equal(ladderQueues(1_000), 2, "10 units: 0b1010, two queues");
    assert.equal(ladderQueues(1), 1, "rounded up to one unit");
    const a = seeded(25);
    const b = seeded(25);
    assert.deepEqual([a(), a(), a()], [b(), b(), b()], "the same delays every run");
  },
});

Deno.test({
  name: "CPU time and peak memory are read from /proc's formats",
  ...options,
  fn() {
    // A comm with spaces and a parenthesis, as the kernel writes it: fields count from the last ')'.
    const stat = "4242 (deno (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0";
    assert.equal(parseCpuTicks(stat), 325);
    assert.throws(() => parseCpuTicks("4242 (deno) S 1"), /utime and stime/);
    const status = "Name:\tdeno\nVmHWM:\t  123456 kB\nVmRSS:\t   65432 kB\n";
    assert.equal(parseStatusKiB(status, "VmHWM"), 123456);
    assert.equal(parseStatusKiB(status, "VmRSS"), 65432);
    assert.throws(() => parseStatusKiB(status, "VmSwap"), /No VmSwap/);
  },
});

Deno.test({
  name: "deno task bench as typed: --help, and a bad flag in one line with exit 2",
  ...options,
  async fn() {
    const help = await run("bench", ["--help"]);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^Usage: deno task bench /);
    const bad = await run("bench", ["--only", "nope"]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr.trim(), /^Invalid --only "nope": expected some of throughput, /);
  },
});

Deno.test({
  name: "the bench command line rejects unknown scenarios and reads the new flags",
  ...options,
  fn() {
    assert.throws(() => parseBenchArgs(["--only", "nope"]), /Invalid --only "nope"/);
    assert.throws(() => parseBenchArgs(["--tasks", "0"]), /Invalid --tasks "0"/);
    assert.throws(() => parseBenchArgs(["--scale-tasks", "1"]), /Invalid --scale-tasks "1"/);
    assert.throws(() => parseBenchArgs(["--max-delay", "4000"]), /Invalid --max-delay "4000"/);
    assert.throws(() => parseBenchArgs(["--calls", "x"]), /Invalid --calls "x"/);
    const parsed = parseBenchArgs([
      "--quick",
      "--out",
      "/tmp/x.md",
      "--only",
      "short,cluster",
      "--max-reps",
      "7",
      "--restarts",
      "2",
      "--calls",
      "30",
      "--delay-tasks",
      "500",
      "--max-delay",
      "1.5",
      "--delay-reps",
      "2",
    ]);
    assert.notEqual(parsed, "help");
    if (parsed !== "help") {
      assert.equal(parsed.options.quick, true);
      assert.equal(parsed.out, "/tmp/x.md");
      assert.deepEqual(parsed.options.scenarios, ["short", "cluster"]);
      assert.equal(parsed.options.maxReps, 7);
      assert.equal(parsed.options.restarts, 2);
      assert.equal(parsed.options.calls, 30);
      assert.equal(parsed.options.delayTasks, 500);
      assert.equal(parsed.options.maxDelayMs, 1_500);
      assert.equal(parsed.options.delayReps, 2);
      assert.match(parsed.options.commandLine ?? "", /^deno task bench --quick .*--delay-reps 2$/);
    }
  },
});

/** Every Markdown table in `text`, as rows of cells. */
function tables(text: string): string[][][] {
  const found: string[][][] = [];
  let current: string[][] | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("|")) {
      const cells = line.slice(1, line.endsWith("|") ? -1 : undefined).split("|");
      (current ??= []).push(cells.map((c) => c.trim()));
    } else if (current) {
      found.push(current);
      current = undefined;
    }
  }
  if (current) found.push(current);
  return found;
}

/** Checks that every table of `text` has a header, a separator and rows of the same width. */
function assertTablesWellFormed(text: string): string[][][] {
  const found = tables(text);
  for (const rows of found) {
    const width = rows[0]!.length;
    assert.ok(rows[1]!.every((cell) => /^-+$/.test(cell)), "second row is the separator");
    for (const row of rows) assert.equal(row.length, width, `ragged row: ${row.join("|")}`);
  }
  return found;
}

/** Runs the suite against the test broker (`AMQP_URL` set for the spawned processes). */
async function runQuick(extra: SuiteOptions = {}) {
  const previous = Deno.env.get("AMQP_URL");
  Deno.env.set("AMQP_URL", await brokerUrl());
  try {
    return await runSuite({ quick: true, workerLogLevel: "warning", ...extra });
  } finally {
    if (previous === undefined) Deno.env.delete("AMQP_URL");
    else Deno.env.set("AMQP_URL", previous);
  }
}

Deno.test({
  name: "the quick benchmark suite runs every default scenario and writes a well-formed report",
  ...options,
  async fn(t) {
    const result = await runQuick();
    const tasks = result.options.tasks;
    const brokerSeen = result.environment.brokerProcess !== undefined;

    await t.step("no run failed", () => {
      assert.deepEqual(result.errors, []);
    });

    await t.step("throughput a–d: every variant completed every task, with its CPU", () => {
      assert.deepEqual(result.throughput.map((x) => x.scenario.key), ["a", "b", "c", "d"]);
      for (const { scenario, runs } of result.throughput) {
        const keys = scenario.variants.map((v) => v.key);
        assert.deepEqual(Object.keys(runs).sort(), [...keys].sort(), scenario.key);
        for (const key of keys) {
          const what = `scenario ${scenario.key}, ${key}`;
          assert.equal(runs[key]!.length, result.options.reps, what);
          for (const run of runs[key]!) {
            assert.ok(run, `${what}: a run is missing`);
            assert.equal(run.tasks, tasks, what);
            assert.equal(run.completed, tasks, what);
            assert.ok(run.elapsedMs > 0 && Number.isFinite(run.tasksPerSecond), what);
            assert.ok(run.loadAverage >= 0, `${what}: load average`);
            assert.equal(typeof run.cpu.consumers, "number", `${what}: consumers' CPU`);
            assert.equal(typeof run.cpu.producer, "number", `${what}: producer's CPU`);
            if (brokerSeen) assert.equal(typeof run.cpu.broker, "number", `${what}: broker CPU`);
          }
        }
      }
      const d = THROUGHPUT_SCENARIOS.find((s) => s.key === "d")!;
      assert.deepEqual(d.bullmq, BULLMQ_SWEEP.map((c) => `bullmq-${c}`));
      assert.ok(d.variants.some((v) => v.ack === "batched"), "d has the batched-ack floor");
      const a = THROUGHPUT_SCENARIOS.find((s) => s.key === "a")!;
      assert.ok(a.variants.some((v) => v.fill === "filled"), "a has the filled-queue floor");
    });

    await t.step("publish: the floor and our producer queued every message", () => {
      assert.ok(result.publish);
      for (const key of ["floor", "ours"] as const) {
        assert.equal(result.publish[key].length, result.options.reps, key);
        for (const run of result.publish[key]) {
          assert.ok(run, `${key}: a run is missing`);
          assert.equal(run.queued, run.count, key);
          assert.ok(run.perSecond > 0, key);
        }
      }
      const library = result.publish.library.filter(Boolean).length;
      assert.ok(
        library === result.options.reps || result.publish.libraryUnavailable !== undefined,
        "the library is measured or said to be unavailable",
      );
    });

    await t.step("recovery: one restart measured, or skipped without rabbitmq-server", async () => {
      if (!await canStartPrivateNode()) {
        assert.ok(result.skipped.some((s) => s.scenario === "recovery"));
        return;
      }
      assert.ok(result.recovery);
      assert.equal(result.recovery.length, result.options.restarts);
      for (const run of result.recovery) {
        assert.ok(run.downMs > 0 && run.resumeMs >= 0 && run.allResumedMs >= run.resumeMs);
      }
    });

    await t.step("scale: both runs exited 0 with their summary and a peak RSS", () => {
      for (const run of [result.scale?.baseline, result.scale?.run]) {
        assert.ok(run, "a scale run is missing");
        assert.equal(run.exitCode, 0, run.failure);
        assert.equal(run.summaryPrinted, true);
        assert.ok((run.peakRssKiB ?? 0) > 0);
      }
      assert.equal(result.scale?.run?.tasks, result.options.scaleTasks);
    });

    await t.step("failover: one measurement per kill of our workers", () => {
      assert.ok(result.failover);
      assert.equal(result.failover.ours.length, result.options.kills);
      for (const run of result.failover.ours) assert.ok(run.latencyMs > 0);
      assert.equal(result.failover.bullmq.length, 0, "quick mode skips BullMQ failover");
    });

    await t.step("start-up: each process kind started once and was measured", () => {
      assert.ok(result.startup);
      for (const kind of ["bare", "ours", "bullmq"] as const) {
        assert.equal(result.startup[kind].length, result.options.startupReps, kind);
        for (const run of result.startup[kind]) {
          assert.ok(run.startupMs > 0 && run.rssKiB > 0, kind);
        }
      }
    });

    await t.step("original scenario: all 10 tasks completed, without and with a kill", () => {
      assert.ok(result.makespan);
      for (const key of ["plain", "killed"] as const) {
        assert.equal(result.makespan[key].length, result.options.reps, key);
        for (const run of result.makespan[key]) {
          assert.equal(run.completed, 10, key);
          assert.equal(run.lost, 0, key);
          assert.ok(run.makespanMs > 0 && run.boundMs > 0, key);
          assert.equal(run.killedAtMs !== undefined, key === "killed", `${key}: kill time`);
        }
      }
    });

    await t.step("call: each system's calls all returned, at 1 and at 10 in flight", () => {
      assert.ok(result.call);
      for (const system of CALL_SYSTEMS) {
        assert.equal(result.call[system].length, result.options.reps, system);
        for (const run of result.call[system]) {
          assert.ok(run, `${system}: a run is missing`);
          for (const k of CALL_IN_FLIGHT) {
            const f: CallFigures | undefined = run.byInFlight[k];
            assert.equal(f?.calls, result.options.calls, `${system}, ${k} in flight`);
            assert.ok(f.p50Ms > 0 && f.p99Ms >= f.p50Ms && f.maxMs >= f.p99Ms, system);
          }
        }
      }
    });

    await t.step("delays: every task started once, none before its time", () => {
      assert.ok(result.delays);
      for (const mode of ["delayed", "undelayed"] as const) {
        assert.equal(result.delays[mode].length, result.options.delayReps, mode);
        for (const run of result.delays[mode]) {
          assert.ok(run, `${mode}: a run is missing`);
          assert.equal(run.completed, result.options.delayTasks, mode);
          assert.ok(run.publishPerSecond > 0 && run.deliveryPerSecond > 0, mode);
          assert.equal(run.lateness !== undefined, mode === "delayed", `${mode}: lateness`);
        }
      }
      for (const run of result.delays.delayed) {
        assert.equal(run!.lateness!.early, 0, "a delayed task started before its time");
        assert.ok(run!.ladder!.mean > 0, "the delays crossed the ladder");
      }
    });

    await t.step("the report, written to a temporary file, is well formed", async () => {
      const file = await Deno.makeTempFile({ prefix: "benchmarks-", suffix: ".md" });
      try {
        await Deno.writeTextFile(file, renderReport(result));
        const text = await Deno.readTextFile(file);
        assert.ok(text.startsWith("# Benchmarks\n"));
        assert.match(text, /Generated by `deno task bench/);
        for (
          const heading of [
            "## Machine",
            "## Targets",
            "## Throughput",
            "## CPU per task",
            "## Publishing",
            "## Recovery after a broker restart",
            "## Scale",
            "## Failover latency",
            "## Start-up and idle memory",
            "## Original scenario",
            "## Call round trip",
            "## Delayed tasks",
            "## Cluster",
          ]
        ) {
          assert.ok(text.includes(`\n${heading}`), `missing section ${heading}`);
        }
        assert.ok(!text.includes("## Errors"), "the report lists errors");
        assert.match(text, /\| Broker +\| RabbitMQ \d+\.\d+/);
        assert.match(text, /\| Runtime +\| Deno \d+\.\d+/);
        assert.match(text, /\| Load average \(1, 5, 15 min\) at start +\| [\d.]+, [\d.]+, [\d.]+/);
        const found = assertTablesWellFormed(text);
        const targets = found.find((rows) => rows[0]![0] === "Target")!;
        const names = targets.slice(2).map((row) => row[0]!);
        for (const key of ["a", "b", "c", "d"]) {
          assert.ok(names.some((n) => n.startsWith(`CPU per task ${key}`)), `CPU target ${key}`);
        }
        for (
          const name of [
            "Throughput a",
            "Short tasks d",
            "Publish: `produce",
            "Publish: the library",
            "Recovery",
            "Scale: `produce",
            "Scale: peak memory",
            "Original scenario, no kill",
            "Original scenario, a worker SIGKILLed",
            "Failover",
            "Call round trip, 1 in flight: ours vs a bare request/reply",
            "Call round trip, 10 in flight: ours vs BullMQ",
            "Delayed tasks at scale",
          ]
        ) {
          assert.ok(names.some((n) => n.startsWith(name)), `missing target ${name}`);
        }
        for (const row of targets.slice(2)) assert.match(row[3]!, /met|not measured/);
        const cpu = found.find((rows) => rows[0]!.includes("Consumers µs/task"));
        assert.ok(cpu, "the CPU per task table");
        assert.ok(cpu.length - 2 >= 4 * 4, "a CPU row per system of every scenario");
        assert.match(text, /\| Scenario +\| System +\| Rep +\| Load \(1 min\)/);
      } finally {
        await Deno.remove(file);
      }
    });
  },
});

Deno.test({
  name: "the cluster scenario runs with --only cluster, or says why it cannot",
  ...options,
  async fn() {
    const result = await runQuick({ scenarios: ["cluster"] });
    assert.deepEqual(result.errors, []);
    const skipped = result.skipped.find((s) => s.scenario === "cluster");
    if (skipped) {
      assert.match(skipped.why, /testing\/cluster\.ts|rabbitmq-server/);
    } else {
      assert.ok(result.cluster);
      const kills = result.options.clusterKills;
      assert.deepEqual(
        result.cluster.map((r) => r.target).sort(),
        [...Array(kills).fill("follower"), ...Array(kills).fill("leader")],
      );
      for (const run of result.cluster) assert.ok(run.published > 0 && run.resumeMs >= 0);
    }
    const text = renderReport(result);
    assertTablesWellFormed(text);
    assert.match(text, /\n## Cluster/);
    const targets = tables(text).find((rows) => rows[0]![0] === "Target")!;
    assert.equal(targets.filter((row) => row[0]!.startsWith("Cluster:")).length, 2);
    if (skipped) assert.match(text, /Not run: testing\/cluster\.ts/);
  },
});
