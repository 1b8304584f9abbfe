import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  encodeEvents,
  ignoredEvents,
  MAX_EVENT_BYTES,
  parseEvents,
  type TareasEvent,
  workerEvent,
} from "./events.ts";

const started: TareasEvent = {
  type: "task.started",
  worker: "w1",
  at: "2026-11-28T10:00:00.000Z",
  taskId: "t1",
  seq: 1,
  attempt: 1,
  redelivered: false,
};

const body = (value: unknown) => Buffer.from(JSON.stringify(value));

Deno.test("events survive encoding and parsing, one or several per message", () => {
  const status = workerEvent("worker.status", "w1", { inHand: 1, completed: 2, node: "n1" });
  assert.deepEqual(parseEvents(encodeEvents([started])), [started]);
  assert.deepEqual(parseEvents(encodeEvents([started, started])), [started, started]);
  assert.deepEqual(parseEvents(encodeEvents([status])), [status]);
});

Deno.test("fields outside the schema are dropped", () => {
  const [event] = parseEvents(body({ ...started, extra: "x".repeat(100), __proto__x: 1 }));
  assert.deepEqual(event, started);
});

Deno.test("bodies that do not fit the schema are ignored and counted", async (t) => {
  const cases: [string, unknown][] = [
    ["a completion without a task id", { ...started, type: "task.completed", taskId: undefined }],
    ["a start without a task id", { ...started, taskId: undefined }],
    ["an empty task id", { ...started, taskId: "" }],
    ["an unknown type", { ...started, type: "task.exploded" }],
    ["a worker that is not a string", { ...started, worker: { name: "w" } }],
    ["a date that is not one", { ...started, at: "lots" }],
    ["a string count", { type: "worker.status", worker: "w", at: started.at, inHand: "0lots0" }],
    ["a negative count", { type: "worker.status", worker: "w", at: started.at, completed: -1 }],
    ["a fractional attempt", { ...started, attempt: 1.5 }],
    ["attempt 0", { ...started, attempt: 0 }],
    ["a string redelivered", { ...started, redelivered: "no" }],
    ["a negative duration", { ...started, durationMs: -5 }],
    ["a reason that is an object", { ...started, reason: { toString: 1 } }],
    ["a 300-character worker name", { ...started, worker: "w".repeat(300) }],
    ["null", null],
    ["a number", 42],
  ];
  for (const [what, value] of cases) {
    await t.step(what, () => {
      const before = ignoredEvents.notAnEvent;
      assert.deepEqual(parseEvents(body(value)), []);
      assert.equal(ignoredEvents.notAnEvent, before + 1);
    });
  }
  await t.step("one bad entry in an array leaves the good ones", () => {
    assert.deepEqual(parseEvents(body([started, { type: "task.started" }, started])), [
      started,
      started,
    ]);
  });
  await t.step("not JSON", () => {
    const before = ignoredEvents.notJson;
    assert.deepEqual(parseEvents(Buffer.from("{nope")), []);
    assert.equal(ignoredEvents.notJson, before + 1);
  });
  await t.step("larger than the limit, unread", () => {
    const before = ignoredEvents.tooLarge;
    assert.deepEqual(parseEvents(Buffer.alloc(MAX_EVENT_BYTES + 1, 32)), []);
    assert.equal(ignoredEvents.tooLarge, before + 1);
  });
});
