/**
 * The judge of a verify run on hand-made data: a lost task fails the run and is named; a task run
 * twice is explained only by a kill of the worker that had it in hand.
 */
import assert from "node:assert/strict";
import type { TaskEvent } from "../../core/events.ts";
import type { TaskResult } from "../../core/results.ts";
import { check, type Fault, percentile, type Published } from "./checker.ts";

const T0 = Date.parse("2026-01-01T00:00:00Z");
const at = (ms: number) => new Date(T0 + ms).toISOString();
const tasks: Published[] = [{ taskId: "a", seq: 1 }, { taskId: "b", seq: 2 }];
const confirmed = new Set(["a", "b"]);
const done = (taskId: string): TaskResult => ({ taskId, status: "completed", result: undefined });

function started(taskId: string, worker: string, ms: number, attempt = 1): TaskEvent {
  const seq = taskId === "a" ? 1 : 2;
  return {
    type: "task.started",
    taskId,
    seq,
    worker,
    at: at(ms),
    attempt,
    redelivered: attempt > 1,
  };
}

function completed(taskId: string, worker: string, ms: number, attempt = 1): TaskEvent {
  return { ...started(taskId, worker, ms, attempt), type: "task.completed", durationMs: 50 };
}

Deno.test("a task completed once each, with no kill, passes", () => {
  const verdict = check({
    published: tasks,
    confirmed,
    results: [done("a"), done("b")],
    events: [started("a", "w1", 0), completed("a", "w1", 50)],
    faults: [],
  });
  assert.equal(verdict.ok, true);
  assert.equal(verdict.completed, 2);
});

Deno.test("a confirmed task with no result, in no queue, is lost: the run fails naming it", () => {
  const verdict = check({
    published: tasks,
    confirmed,
    results: [done("a")],
    events: [],
    faults: [],
    census: { queued: new Set(), deadLettered: new Map(), results: [] },
  });
  assert.equal(verdict.ok, false);
  assert.deepEqual(verdict.lost, [{ taskId: "b", seq: 2 }]);
});

Deno.test("a task still in the queue at the end is not lost, but the run still fails", () => {
  const verdict = check({
    published: tasks,
    confirmed,
    results: [done("a")],
    events: [],
    faults: [],
    census: { queued: new Set(["b"]), deadLettered: new Map(), results: [] },
  });
  assert.deepEqual(verdict.lost, []);
  assert.equal(verdict.notRun.length, 1);
  assert.equal(verdict.ok, false);
});

Deno.test("a task in hand on a SIGKILLed worker and run again elsewhere is explained", () => {
  const faults: Fault[] = [{ kind: "worker", worker: "w1", at: T0 + 20 }];
  const verdict = check({
    published: tasks,
    confirmed,
    results: [done("a"), done("b")],
    events: [started("a", "w1", 0), started("a", "w2", 80, 2), completed("a", "w2", 130, 2)],
    faults,
  });
  assert.equal(verdict.ok, true);
  assert.equal(verdict.duplicates.length, 1);
  assert.equal(verdict.duplicates[0]!.explained, true);
  assert.match(verdict.duplicates[0]!.why[0]!, /in hand on w1 .*SIGKILLed/);
  assert.deepEqual(verdict.redeliveryMs, [60]);
});

Deno.test("a task run twice with no kill of the worker that had it is not explained", () => {
  // w2 was killed, not w1: nothing explains the second run of "a".
  const faults: Fault[] = [{ kind: "worker", worker: "w2", at: T0 + 20 }];
  const verdict = check({
    published: tasks,
    confirmed,
    results: [done("a"), done("b")],
    events: [started("a", "w1", 0), started("a", "w3", 80, 2), completed("a", "w3", 130, 2)],
    faults,
  });
  assert.equal(verdict.ok, false);
  assert.equal(verdict.duplicates[0]!.explained, false);
  assert.match(verdict.duplicates[0]!.why[0]!, /^NOT EXPLAINED/);
});

Deno.test("a run completed long before its worker's kill does not explain a second run", () => {
  const faults: Fault[] = [{ kind: "worker", worker: "w1", at: T0 + 5_000 }];
  const verdict = check({
    published: tasks,
    confirmed,
    results: [done("a"), done("b")],
    events: [
      started("a", "w1", 0),
      completed("a", "w1", 50),
      started("a", "w2", 5_100, 2),
      completed("a", "w2", 5_150, 2),
    ],
    faults,
  });
  assert.equal(verdict.ok, false);
  assert.match(verdict.duplicates[0]!.why[0]!, /long enough for its ack/);
});

Deno.test("percentile is by nearest rank", () => {
  assert.equal(percentile([5, 1, 3], 50), 3);
  assert.equal(percentile([5, 1, 3], 100), 5);
  assert.equal(percentile([], 50), undefined);
});
