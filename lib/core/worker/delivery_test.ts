import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { consumeMessage } from "../../../testing/fake_channel.ts";
import { UNDECODABLE_HEADER } from "../header_guard.ts";
import { readDelivery } from "./delivery.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

const MAX_BODY = 1_024;
const task = { id: "t1", seq: 3, complexity: 2, createdAt: "2026-01-01T00:00:00.000Z" };

Deno.test("a task is read with its attempt and the fields of its events", options, () => {
  const read = readDelivery<{ n: number }>(
    consumeMessage({ body: { ...task, payload: { n: 1 }, extra: "dropped" }, messageId: "t1" }),
    MAX_BODY,
  );
  assert.equal(read.malformed, undefined);
  assert.deepEqual(read.task, { ...task, name: "default", payload: { n: 1 } });
  assert.deepEqual(read.attempt, { attempt: 1, returns: 0 });
  assert.deepEqual(read.fields, {
    taskId: "t1",
    name: "default",
    seq: 3,
    attempt: 1,
    redelivered: false,
  });
});

Deno.test("the attempt counts earlier attempts and this hop's returns", options, async (t) => {
  const cases: [string, Record<string, unknown>, boolean, number, number][] = [
    ["a retry after two attempts", { "x-tareas-attempts": 2 }, false, 3, 0],
    ["a redelivery after two returns", { "x-delivery-count": 2 }, true, 3, 2],
    ["a redelivery from a classic queue (no count)", {}, true, 2, 1],
    ["a first delivery claiming returns (forged)", { "x-delivery-count": 4 }, false, 1, 0],
  ];
  for (const [what, headers, redelivered, attempt, returns] of cases) {
    await t.step(what, () => {
      const read = readDelivery(consumeMessage({ body: task, headers, redelivered }), MAX_BODY);
      assert.equal(read.malformed, undefined);
      assert.deepEqual(read.attempt, { attempt, returns });
      assert.equal(read.fields.attempt, attempt);
      assert.equal(read.fields.redelivered, redelivered);
    });
  }
});

Deno.test("a body that is not a task is malformed, with its reason", options, async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ["not JSON", Buffer.from("{nope"), /^Body is not JSON$/],
    ["not UTF-8", Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), /^Body is not JSON$/],
    ["an array", [task], /^Body is not a task: expected a JSON object$/],
    ["null", null, /^Body is not a task: expected a JSON object$/],
    ["without an id", { ...task, id: undefined }, /"id" must be a string of 1 to 200/],
    ["an id of 201 characters", { ...task, id: "i".repeat(201) }, /"id" must be a string/],
    ["a negative seq", { ...task, seq: -1 }, /"seq" must be a non-negative integer/],
    ["a date that is not one", { ...task, createdAt: "soon" }, /"createdAt" must be an ISO date/],
    [
      "larger than maxBody",
      { ...task, payload: "p".repeat(MAX_BODY) },
      /^Body too large: \d+ bytes, limit 1024$/,
    ],
  ];
  for (const [what, body, reason] of cases) {
    await t.step(what, () => {
      const read = readDelivery(consumeMessage({ body, messageId: "m1" }), MAX_BODY);
      assert.match(read.malformed ?? "(read as a task)", reason);
      assert.deepEqual(read.fields, { taskId: "m1", seq: 0, attempt: 1, redelivered: false });
    });
  }
});

Deno.test(
  "headers the connection's guard could not decode make the delivery malformed",
  options,
  async (t) => {
    await t.step("with the guard's reason", () => {
      const read = readDelivery(
        consumeMessage({
          body: task,
          headers: { [UNDECODABLE_HEADER]: "nested deeper than 64 levels" },
          messageId: "t1",
        }),
        MAX_BODY,
      );
      assert.equal(read.malformed, "Headers cannot be decoded: nested deeper than 64 levels");
      assert.equal(read.fields.taskId, "t1");
    });
    await t.step("with a forged reason that is not a short string", () => {
      for (const value of [{ toString: "x" }, "r".repeat(101), ""]) {
        const read = readDelivery(
          consumeMessage({ body: task, headers: { [UNDECODABLE_HEADER]: value } }),
          MAX_BODY,
        );
        assert.equal(read.malformed, "Headers cannot be decoded: the headers could not be decoded");
      }
    });
  },
);

Deno.test(
  "forged attempt headers make the delivery malformed, counted as a first attempt",
  options,
  async (t) => {
    const forged: [string, Record<string, unknown>][] = [
      ["a string count", { "x-tareas-attempts": "2" }],
      ["a negative count", { "x-tareas-attempts": -1 }],
      ["a fraction", { "x-tareas-attempts": 1.5 }],
      ["a count past the limit", { "x-tareas-attempts": 1e9 }],
      ["a table", { "x-tareas-attempts": { n: 1 } }],
      ["a redelivery count that is not a number", { "x-delivery-count": "lots" }],
    ];
    for (const [what, headers] of forged) {
      await t.step(what, () => {
        const read = readDelivery(
          consumeMessage({ body: task, headers, redelivered: true, messageId: "t1" }),
          MAX_BODY,
        );
        assert.match(
          read.malformed ?? "(read as a task)",
          /^Header x-(tareas-attempts|delivery-count) must be a whole number from 0 to 1000000, got /,
        );
        assert.deepEqual(read.attempt, { attempt: 1, returns: 0 });
        assert.deepEqual(read.fields, { taskId: "t1", seq: 0, attempt: 1, redelivered: true });
      });
    }
  },
);

Deno.test(
  "a malformed message's id is carried in its events only when short and a string",
  options,
  async (t) => {
    const cases: [string, unknown, string][] = [
      ["200 characters", "m".repeat(200), "m".repeat(200)],
      ["201 characters", "m".repeat(201), "(no message id)"],
      ["empty", "", "(no message id)"],
      ["a number", 42, "(no message id)"],
      ["missing", undefined, "(no message id)"],
    ];
    for (const [what, messageId, taskId] of cases) {
      await t.step(what, () => {
        const read = readDelivery(consumeMessage({ body: "not a task", messageId }), MAX_BODY);
        assert.ok(read.malformed !== undefined);
        assert.equal(read.fields.taskId, taskId);
      });
    }
  },
);
