import assert from "node:assert/strict";
import { formatTraceparent, parseTraceparent, startPublishSpan } from "./trace.ts";
import { createTask, taskProperties } from "./task.ts";

Deno.test("a traceparent survives formatting and parsing", () => {
  const value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const parsed = parseTraceparent(value);
  assert.ok(parsed);
  assert.equal(parsed.traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
  assert.equal(parsed.spanId, "00f067aa0ba902b7");
  assert.equal(parsed.traceFlags, 1);
  assert.equal(formatTraceparent(parsed), value);
});

Deno.test("malformed or all-zero traceparents are ignored", () => {
  for (
    const value of [
      "",
      "garbage",
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
    ]
  ) {
    assert.equal(parseTraceparent(value), undefined, value);
  }
});

Deno.test("without a tracer provider, a task gets no span and no traceparent header", () => {
  const { span, traceparent } = startPublishSpan("q", createTask(null, { seq: 1 }));
  span.end();
  assert.equal(traceparent, undefined);
  assert.equal(taskProperties(createTask(null), { traceparent }).headers, undefined);
});
