import assert from "node:assert/strict";
import type { TaskEvent } from "../lib/core/events.ts";
import { Scenario } from "../testing/scenario.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

/**
 * The story of the original scripts: three workers share ten tasks, one is SIGKILLed in the middle
 * of a task, and every task still completes exactly once.
 */
async function killOneWorker(t: Deno.TestContext, timeScale: number): Promise<void> {
  await using scenario = await Scenario.open();
  const workers = new Map<string, Awaited<ReturnType<Scenario["startWorker"]>>>();

  await t.step("three workers come online", async () => {
    for (const name of ["w1", "w2", "w3"]) {
      workers.set(name, await scenario.startWorker(name, ["--time-scale", String(timeScale)]));
    }
  });

  await t.step("ten tasks are published and confirmed", async () => {
    await scenario.produce(["--count", "10"]);
  });

  let killed!: TaskEvent;
  await t.step("the first worker to start a task is killed mid-task", async () => {
    killed = await scenario.waitForEvent<TaskEvent>(
      (e) => e.type === "task.started",
      "a task to start",
    );
    const child = workers.get(killed.worker)!;
    child.kill("SIGKILL");
    await child.exit();
  });

  await t.step("all ten tasks complete exactly once", async () => {
    await scenario.waitForCompleted(10, 120_000);
    const completions = scenario.completions();
    const ids = completions.map((e) => e.taskId);
    assert.equal(new Set(ids).size, 10, "ten distinct tasks completed");
    assert.equal(ids.length, 10, `no task completed twice: ${ids.join(", ")}`);
  });

  await t.step("only the task in hand came back: prefetch 1 strands one task per worker", () => {
    // Tried: a worker consuming with no prefetch held several tasks; all came back at the kill.
    const back = scenario.events.filter((e): e is TaskEvent =>
      "taskId" in e && (e.redelivered || e.attempt > 1)
    );
    assert.deepEqual(
      [...new Set(back.map((e) => e.taskId))],
      [killed.taskId],
      `redelivered: ${back.map((e) => `#${e.seq}`).join(", ")}`,
    );
    const again = scenario.completions().filter((e) => e.redelivered);
    assert.equal(again.length, 1, "one completion after a redelivery");
  });

  await t.step("the killed worker's task was redelivered to another worker", () => {
    const completion = scenario.completions().find((e) => e.taskId === killed.taskId)!;
    assert.notEqual(completion.worker, killed.worker);
    assert.equal(completion.redelivered, true);
    assert.equal(completion.attempt, 2);
    assert.ok(
      !scenario.completions().some((e) => e.worker === killed.worker && e.at > killed.at),
      "the killed worker completed nothing after its kill",
    );
  });

  await t.step("both survivors did work", () => {
    for (const name of workers.keys()) {
      if (name === killed.worker) continue;
      assert.ok(scenario.completions().some((e) => e.worker === name), `${name} completed a task`);
    }
  });

  await t.step("after a graceful stop nothing is left ready or unacked", async () => {
    for (const [name, child] of workers) {
      if (name === killed.worker) continue;
      child.kill("SIGTERM");
      assert.equal((await child.exit()).code, 0, `${name} exits 0 on SIGTERM`);
    }
    // With no consumer left, an unacked message would be back to ready: 0 means 0 of both.
    assert.equal(await scenario.ready(), 0);
  });
  scenario.pass();
}

Deno.test({
  name: "a task held by a killed worker is completed by another worker, exactly once",
  ...options,
  fn: (t) => killOneWorker(t, 0.1),
});

Deno.test({
  name: "the same story with the original 1-5 s task durations",
  ...options,
  fn: (t) => killOneWorker(t, 1),
});
