/**
 * `produce --wait` tells the truth: when nothing consumes the queue it says so (and how to start
 * a worker), it exits 0 only when every task completed, and exit 3 lists dead-lettered tasks.
 */
import assert from "node:assert/strict";
import { Scenario } from "../testing/scenario.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

/** A handler module under tests/handlers/, as a URL the worker's --handler accepts. */
function handler(name: string): string {
  return new URL(`./handlers/${name}.ts`, import.meta.url).href;
}

Deno.test({
  name: "produce --wait with nothing consuming says so with the command to start a worker, and " +
    "again when every worker has gone",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const hint = new RegExp(
      `Nothing is consuming ${scenario.queue}: start a worker with: deno task work --queue ` +
        scenario.queue,
    );
    const producer = await scenario.startWaitingProducer(3, 1, 60);
    const hints = () => producer.lines.filter((line) => hint.test(line)).length;

    await scenario.step(t, "within a few seconds it says nothing consumes the queue", async () => {
      await producer.waitForLine(hint, 10_000);
      assert.equal(hints(), 1);
    });

    await scenario.step(t, "a worker comes, runs a task or two, then stops", async () => {
      const worker = await scenario.startWorker("leaving", ["--time-scale", "0.5"]);
      await scenario.waitForEvent((e) => e.type === "task.completed", "a first completion");
      worker.kill("SIGTERM");
      assert.equal((await worker.exit()).code, 0);
      await scenario.waitForEvent((e) => e.type === "worker.offline", "worker.offline");
      const done = new Set(scenario.completions().map((e) => e.taskId)).size;
      assert.ok(done >= 1 && done < 3, `${done} of 3 tasks done: some are left`);
    });

    await scenario.step(t, "it says so again, and keeps waiting", async () => {
      await producer.waitForLines(hint, 2, 10_000);
      assert.ok(producer.running, "still waiting");
    });

    await scenario.step(t, "a new worker finishes the run: exit 0", async () => {
      await scenario.startWorker("arriving", ["--time-scale", "0"]);
      const status = await producer.exit(30_000);
      assert.equal(status.code, 0, producer.output());
      assert.match(producer.lines.join("\n"), /^3\/3 tasks completed$/m);
    });
    scenario.pass();
  },
});

Deno.test({
  name: "produce --wait exits 3 when tasks were dead-lettered, listing them with their reasons, " +
    "and its progress agrees with the summary",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    await scenario.startWorker("strict", [
      ...["--handler", handler("always_throws"), "--max-attempts", "1", "--time-scale", "0"],
    ]);
    const producer = await scenario.startWaitingProducer(3, 1, 60);
    const status = await producer.exit(30_000);
    const output = producer.lines.join("\n");
    assert.equal(status.code, 3, output);
    assert.match(output, /^2\/3 tasks completed$/m);
    assert.match(output, /^1 task dead-lettered$|^1 tasks dead-lettered$/m);
    assert.match(output, /task #1 \S+ dead-lettered: Task #1 always fails \(attempt 1\)/);
    const last = producer.lines.filter((line) => line.startsWith("progress:")).at(-1);
    assert.match(last ?? "", /^progress: 2\/3 completed, 1 dead-lettered, /);
    scenario.pass();
  },
});
