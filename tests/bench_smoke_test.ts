/**
 * Smoke test of the benchmark suite (`deno task bench`): runs it in quick mode (50 tasks, one
 * repetition, 3 kills, no BullMQ failover) against the real broker and Redis, and checks that every
 * scenario ran, that the counts match the number of tasks, and that the report is well formed. It
 * asserts no timing: the figures of a quick run on a shared machine mean nothing.
 */
import assert from "node:assert/strict";
import { parseBenchArgs } from "../bench/main.ts";
import { renderReport } from "../bench/report.ts";
import { quantile, summarize } from "../bench/_stats.ts";
import { runSuite, SYSTEMS } from "../bench/suite.ts";
import { brokerUrl } from "../testing/scenario.ts";

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
  name: "the bench command line rejects unknown scenarios and reads --quick",
  ...options,
  fn() {
    assert.throws(() => parseBenchArgs(["--only", "nope"]), /Invalid --only "nope"/);
    assert.throws(() => parseBenchArgs(["--tasks", "0"]), /Invalid --tasks "0"/);
    const parsed = parseBenchArgs(["--quick", "--out", "/tmp/x.md"]);
    assert.notEqual(parsed, "help");
    if (parsed !== "help") {
      assert.equal(parsed.options.quick, true);
      assert.equal(parsed.out, "/tmp/x.md");
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

Deno.test({
  name: "the quick benchmark suite runs every scenario and writes a well-formed report",
  ...options,
  async fn(t) {
    const previous = Deno.env.get("AMQP_URL");
    Deno.env.set("AMQP_URL", await brokerUrl());
    let result;
    try {
      result = await runSuite({ quick: true });
    } finally {
      if (previous === undefined) Deno.env.delete("AMQP_URL");
      else Deno.env.set("AMQP_URL", previous);
    }
    const tasks = result.options.tasks;

    await t.step("no run failed", () => {
      assert.deepEqual(result.errors, []);
    });

    await t.step("throughput: each system completed every task in each scenario", () => {
      assert.equal(result.throughput.length, 3);
      for (const { scenario, runs } of result.throughput) {
        for (const system of SYSTEMS) {
          const what = `scenario ${scenario.key}, ${system}`;
          assert.equal(runs[system].length, result.options.reps, what);
          for (const run of runs[system]) {
            assert.ok(run, `${what}: a run is missing`);
            assert.equal(run.tasks, tasks, what);
            assert.equal(run.completed, tasks, what);
            assert.ok(run.elapsedMs > 0 && Number.isFinite(run.tasksPerSecond), what);
          }
        }
      }
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

    await t.step("original scenario: all 10 tasks completed", () => {
      assert.ok(result.makespan);
      assert.equal(result.makespan.length, result.options.reps);
      for (const run of result.makespan) {
        assert.equal(run.completed, 10);
        assert.equal(run.durationsMs.length, 10);
        assert.ok(run.makespanMs > 0 && run.boundMs > 0);
      }
    });

    await t.step("the report, written to a temporary file, is well formed", async () => {
      const file = await Deno.makeTempFile({ prefix: "benchmarks-", suffix: ".md" });
      try {
        await Deno.writeTextFile(file, renderReport(result));
        const text = await Deno.readTextFile(file);
        assert.ok(text.startsWith("# Benchmarks\n"));
        for (
          const heading of [
            "## Machine",
            "## Targets",
            "## Throughput",
            "## Failover latency",
            "## Start-up and idle memory",
            "## Original scenario",
          ]
        ) {
          assert.ok(text.includes(`\n${heading}`), `missing section ${heading}`);
        }
        assert.ok(!text.includes("## Errors"), "the report lists errors");
        assert.match(text, /\| Broker \| RabbitMQ \d+\.\d+/);
        assert.match(text, /\| Runtime \| Deno \d+\.\d+/);
        const found = tables(text);
        assert.ok(found.length >= 6, `expected at least 6 tables, found ${found.length}`);
        for (const rows of found) {
          const width = rows[0]!.length;
          assert.ok(rows[1]!.every((cell) => /^-+$/.test(cell)), "second row is the separator");
          for (const row of rows) assert.equal(row.length, width, `ragged row: ${row.join("|")}`);
        }
        const targets = found.find((rows) => rows[0]![0] === "Target")!;
        assert.equal(targets.length - 2, 6, "three throughput targets, failover, start-up, RSS");
        for (const row of targets.slice(2)) assert.match(row[3]!, /met|not measured/);
      } finally {
        await Deno.remove(file);
      }
    });
  },
});
