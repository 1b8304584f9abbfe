import assert from "node:assert/strict";
import { delay } from "../lib/core/async.ts";
import { SAME_SIGNAL_MS } from "../lib/cli/main.ts";
import type { TaskEvent } from "../lib/core/events.ts";
import { createTask } from "../lib/core/task.ts";
import { Scenario, TerminalChild } from "../testing/scenario.ts";

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
    // A deliberate second signal: later than the duplicate a terminal plus deno task sends.
    await delay(SAME_SIGNAL_MS + 300);
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

/**
 * Starts `deno task work` in a pseudo-terminal, as a person does, and waits until it consumes.
 * Ctrl-C there sends SIGINT to the terminal's foreground job: `deno task` and the worker, which
 * then sees the terminal's SIGINT and the one `deno task` forwards, milliseconds apart.
 */
async function terminalWorker(scenario: Scenario, name: string): Promise<TerminalChild> {
  const args = ["--queue", scenario.queue, "--name", name, "--time-scale", "1"];
  const worker = await TerminalChild.start(name, "work", args, { AMQP_URL: scenario.url });
  await worker.waitForLine(new RegExp(`Worker ${name} consuming ${scenario.queue}`));
  await scenario.waitForEvent(
    (e) => e.type === "worker.online" && e.worker === name,
    `worker ${name} online`,
  );
  return worker;
}

Deno.test({
  name: "one Ctrl-C on deno task work finishes the task in hand and exits 0, even though the " +
    "worker receives the signal twice",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    await using worker = await terminalWorker(scenario, "ctrl-c");
    const task = createTask(null, { seq: 1, complexity: 2 });
    await scenario.publish(task);
    await scenario.waitForEvent((e) => e.type === "task.started", "the task to start");
    await worker.kill("SIGINT");
    assert.equal((await worker.exit(20_000)).code, 0, worker.output());
    const completed = scenario.completions();
    assert.equal(completed.length, 1, "completed once");
    assert.equal(completed[0]!.taskId, task.id);
    assert.equal(
      scenario.events.filter((e) => e.type === "task.started").length,
      1,
      "never redelivered",
    );
    assert.equal(await scenario.ready(), 0, "acked: nothing requeued");
    scenario.pass();
  },
});

Deno.test({
  name: "a second, deliberate Ctrl-C a second later exits 1 at once and the task is requeued",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    await using worker = await terminalWorker(scenario, "impatient-terminal");
    await scenario.publish(createTask(null, { seq: 1, complexity: 60 }));
    await scenario.waitForEvent((e) => e.type === "task.started", "the task to start");
    await worker.kill("SIGINT");
    await delay(1_000); // The person presses Ctrl-C again a second later.
    await worker.kill("SIGINT");
    assert.equal((await worker.exit(10_000)).code, 1, worker.output());
    assert.equal(scenario.completions().length, 0, "the 60 s task did not complete");
    await scenario.readyBecomes(1); // The broker requeues it once it sees the connection close.
    scenario.pass();
  },
});
