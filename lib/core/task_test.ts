import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { TaskFormatError } from "./errors.ts";
import { createTask, decodeTask, encodeTask, randomComplexity, taskProperties } from "./task.ts";

Deno.test("a task survives encoding and decoding unchanged, payload included", () => {
  const task = createTask(null, { seq: 3, complexity: 4 });
  assert.deepEqual(decodeTask(encodeTask(task), 1024), task);
  const payload = { image: "cat.png", sizes: [1, 2.5], nested: { ok: true, none: null }, s: "ü" };
  const rich = createTask(payload, { id: "resize-cat" });
  assert.deepEqual(decodeTask(encodeTask(rich), 1024), rich);
  assert.equal(rich.id, "resize-cat");
  // A Buffer (what amqplib delivers) is decoded natively, another Uint8Array by the strict
  // decoder: both the same way, a real U+FFFD in the text included.
  for (const text of ["a".repeat(3_000), "ü".repeat(3_000), "plain ascii", "petit ü", "\uFFFD"]) {
    const task = createTask({ text });
    assert.deepEqual(decodeTask(encodeTask(task), 1_048_576), task);
    assert.deepEqual(decodeTask(new Uint8Array(encodeTask(task)), 1_048_576), task);
  }
  // Tried: a body that starts with a UTF-8 byte order mark, as some tools write JSON files.
  const withMark = Buffer.concat([Buffer.of(0xef, 0xbb, 0xbf), encodeTask(task)]);
  assert.deepEqual(decodeTask(withMark, 1024), task);
});

Deno.test("a body from another publisher needs only an id and a date", () => {
  const body = Buffer.from(JSON.stringify({
    id: "py-1",
    createdAt: "2026-11-28T10:00:00Z",
    payload: [1, "two"],
    extra: "dropped",
  }));
  assert.deepEqual(decodeTask(body, 1024), {
    id: "py-1",
    name: "default",
    seq: 0,
    complexity: 0,
    createdAt: "2026-11-28T10:00:00Z",
    payload: [1, "two"],
  });
  const old = Buffer.from(
    JSON.stringify({ id: "a", seq: 1, complexity: 2, createdAt: "2026-01-01" }),
  );
  assert.equal(decodeTask(old, 1024).payload, null, "tasks from before payloads carry null");
});

Deno.test("bad task options and payloads that are not JSON are refused", () => {
  assert.throws(() => createTask(null, { id: "" }), /Invalid task: "id" must be a string of 1/);
  assert.throws(() => createTask(null, { seq: -1 }), /Invalid task: "seq"/);
  assert.throws(() => encodeTask(createTask(10n)), /Payload is not JSON/);
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
    // A Buffer's native decoding would make these bytes U+FFFD and read a valid task.
    ["invalid UTF-8 in a Buffer", Buffer.from('{"id":"\xff"}', "latin1"), /not JSON/],
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

Deno.test("a task's name travels as the message's type, not in its body", () => {
  const task = createTask({ image: "a.png" }, { name: "resize" });
  const body = encodeTask(task);
  assert.equal(JSON.parse(body.toString()).name, undefined, "not in the body");
  const properties = taskProperties(task);
  assert.equal(properties.type, "resize");
  assert.equal(decodeTask(body, 1024, properties.type).name, "resize");
  assert.equal(taskProperties(createTask(null)).type, undefined, "the default name is not sent");
  assert.equal(decodeTask(body, 1024, undefined).name, "default", "no type: the default name");
  assert.equal(decodeTask(body, 1024, "").name, "default", "an empty type: the default name");
  // Tried: a type that is not a name, as any publisher could send.
  for (const type of ["x".repeat(201), 7, { a: 1 }]) {
    assert.throws(() => decodeTask(body, 1024, type), TaskFormatError);
  }
});
