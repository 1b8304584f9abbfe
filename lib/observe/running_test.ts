import assert from "node:assert/strict";
import type { TareasEvent } from "../core/events.ts";
import { RunningTasks } from "./running.ts";

const T0 = Date.parse("2026-01-01T00:00:00Z");

function task(
  type: string,
  taskId: string,
  fields: Record<string, unknown> = {},
): TareasEvent {
  return {
    type,
    worker: "w",
    at: new Date(T0).toISOString(),
    taskId,
    seq: 0,
    attempt: 1,
    redelivered: false,
    ...fields,
  } as unknown as TareasEvent;
}

Deno.test("a task runs from its task.started or task.progress to its end, with its latest progress", () => {
  const running = new RunningTasks();
  running.observe(task("task.started", "a", { seq: 2, name: "resize" }));
  running.observe(task("task.progress", "b", { seq: 1, progress: { stage: "upload" } }));
  running.observe(task("task.progress", "a", { seq: 2, name: "resize", progress: 0.4 }));
  running.observe(task("task.progress", "a", { seq: 2, name: "resize", progress: 0.75 }));
  assert.deepEqual(
    running.tasks().map((t) => [t.taskId, t.seq, t.name, t.progress]),
    [["b", 1, undefined, { stage: "upload" }], ["a", 2, "resize", 0.75]],
  );
  running.observe(task("task.completed", "a", { seq: 2 }));
  running.observe(task("task.dead", "b", { seq: 1 }));
  assert.equal(running.size, 0);
});

Deno.test("a late task.progress of an attempt that ended is ignored, a retry's is not", () => {
  const running = new RunningTasks();
  running.observe(task("task.progress", "a", { progress: 0.5 }));
  running.observe(task("task.failed", "a"));
  running.observe(task("task.progress", "a", { progress: 0.9 })); // sent before the failure
  assert.equal(running.size, 0, "the attempt that failed is not running again");
  running.observe(task("task.started", "a", { attempt: 2 }));
  running.observe(task("task.progress", "a", { attempt: 1, progress: 0.9 }));
  assert.deepEqual(running.tasks().map((t) => [t.attempt, t.progress]), [[2, undefined]]);
  running.observe(task("task.progress", "a", { attempt: 2, progress: 0.1 }));
  assert.deepEqual(running.tasks().map((t) => [t.attempt, t.progress]), [[2, 0.1]]);
});

Deno.test("a task moves with its redelivery to another worker; a worker's tasks can be dropped", () => {
  const running = new RunningTasks();
  running.observe(task("task.started", "a", { worker: "w1" }));
  running.observe(task("task.started", "a", { worker: "w2", attempt: 2, redelivered: true }));
  running.observe(task("task.started", "b", { worker: "w1" }));
  assert.deepEqual(
    [...running.byWorker()].map(([worker, tasks]) => [worker, tasks.map((t) => t.taskId)]),
    [["w2", ["a"]], ["w1", ["b"]]],
  );
  running.dropWorker("w1", new Date(T0 - 1).toISOString());
  assert.equal(running.size, 2, "tasks heard of after the cutoff stay");
  running.dropWorker("w1", new Date(T0 + 1).toISOString());
  assert.deepEqual(running.tasks().map((t) => t.taskId), ["a"]);
  running.dropWorker("w2");
  assert.equal(running.size, 0);
});

Deno.test("the tasks tracked are capped: a flood of forged starts keeps the latest", () => {
  const running = new RunningTasks({ maxTasks: 3 });
  for (let i = 0; i < 10; i++) running.observe(task("task.started", `t${i}`, { seq: i }));
  assert.deepEqual(running.tasks().map((t) => t.seq), [7, 8, 9]);
  running.observe(task("worker.status", "x"));
  assert.equal(running.size, 3, "worker events are not tasks");
});
