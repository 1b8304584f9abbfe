import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { TaskFormatError } from "./errors.ts";
import { createTask, decodeTask, encodeTask, randomComplexity } from "./task.ts";

Deno.test("a task survives encoding and decoding unchanged", () => {
  const task = createTask(3, 4);
  assert.deepEqual(decodeTask(encodeTask(task), 1024), task);
});

Deno.test("random complexities stay within the bounds and reach both ends", () => {
  const seen = new Set(Array.from({ length: 500 }, () => randomComplexity(1, 5)));
  assert.deepEqual([...seen].sort(), [1, 2, 3, 4, 5]);
  assert.equal(randomComplexity(0, 0), 0);
});

Deno.test("malformed bodies are refused with a reason", async (t) => {
  const valid = { id: "a", seq: 1, complexity: 2, createdAt: "2026-01-01T00:00:00Z" };
  const cases: [string, Uint8Array, RegExp][] = [
    ["not JSON", Buffer.from("{nope"), /not JSON/],
    ["invalid UTF-8", Uint8Array.of(0xff, 0xfe), /not JSON/],
    ["an array", Buffer.from("[1]"), /expected a JSON object/],
    ["null", Buffer.from("null"), /expected a JSON object/],
    ["no id", Buffer.from(JSON.stringify({ ...valid, id: "" })), /"id"/],
    ["negative seq", Buffer.from(JSON.stringify({ ...valid, seq: -1 })), /"seq"/],
    [
      "string complexity",
      Buffer.from(JSON.stringify({ ...valid, complexity: "3" })),
      /"complexity"/,
    ],
    ["huge complexity", Buffer.from(JSON.stringify({ ...valid, complexity: 1e9 })), /"complexity"/],
    ["bad date", Buffer.from(JSON.stringify({ ...valid, createdAt: "yesterday" })), /"createdAt"/],
    ["too large", Buffer.alloc(2048, 32), /Body too large: 2048 bytes, limit 1024/],
  ];
  for (const [what, body, reason] of cases) {
    await t.step(what, () => {
      assert.throws(() => decodeTask(body, 1024), (error: unknown) => {
        assert.ok(error instanceof TaskFormatError);
        assert.match(error.message, reason);
        return true;
      });
    });
  }
});
