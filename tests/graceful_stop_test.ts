import assert from "node:assert/strict";
import type { TaskEvent } from "../lib/events.ts";
import { Scenario } from "../testing/scenario.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

Deno.test({
  name: "SIGTERM during a task lets it finish and ack once, then the worker exits 0",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    const worker = await scenario.startWorker("graceful", ["--time-scale", "0.5"]);
    await scenario.produce(["--count", "1", "--min", "2", "--max", "2"]);
    const started = await scenario.waitForEvent<TaskEvent>(
      (e) => e.type === "task.started",
      "the task to start",
    );
    worker.kill("SIGTERM");
    assert.equal((await worker.exit()).code, 0);
    await scenario.waitForEvent((e) => e.type === "worker.offline", "worker.offline");
    const completed = scenario.completions();
    assert.equal(completed.length, 1, "completed once");
    assert.equal(completed[0]!.taskId, started.taskId);
    assert.equal(completed[0]!.redelivered, false);
    assert.equal(await scenario.ready(), 0, "acked: nothing requeued");
    scenario.pass();
  },
});

Deno.test({
  name: "a second signal exits at once and the broker requeues the task in hand",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    const worker = await scenario.startWorker("impatient", ["--time-scale", "10"]);
    await scenario.produce(["--count", "1", "--min", "5", "--max", "5"]);
    await scenario.waitForEvent((e) => e.type === "task.started", "the task to start");
    worker.kill("SIGTERM");
    await worker.waitForLine(/Stopping: finishing 1 task/);
    worker.kill("SIGTERM");
    assert.equal((await worker.exit(10_000)).code, 1);
    assert.equal(scenario.completions().length, 0, "the 50 s task did not complete");
    // The closed connection returned the task to the queue.
    const next = await scenario.startWorker("next", ["--time-scale", "0"]);
    const done = await scenario.waitForEvent<TaskEvent>(
      (e) => e.type === "task.completed",
      "the requeued task to complete on another worker",
    );
    assert.equal(done.worker, "next");
    assert.equal(done.redelivered, true);
    next.kill("SIGTERM");
    assert.equal((await next.exit()).code, 0);
    scenario.pass();
  },
});

Deno.test({
  name: "a task timeout not below the broker's 30-minute consumer timeout is warned about",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    const worker = await scenario.startWorker("patient", ["--task-timeout", "1800"]);
    await worker.waitForLine(/Task timeout 1800 s is not below the broker's 30-minute consumer/);
    worker.kill("SIGTERM");
    assert.equal((await worker.exit()).code, 0);
    scenario.pass();
  },
});
