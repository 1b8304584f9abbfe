import assert from "node:assert/strict";
import type { LogRecord } from "./deps/logtape.ts";
import { formatTextLog } from "./log.ts";

/** A record as `logger.info(template, properties)` makes it, values interleaved with text. */
function record(template: string[], ...values: unknown[]): LogRecord {
  const message: unknown[] = [];
  template.forEach((text, i) => message.push(text, ...(i < values.length ? [values[i]] : [])));
  return {
    category: ["tareas", "worker"],
    level: "error",
    message,
    rawMessage: template.join("{}"),
    timestamp: Date.parse("2026-01-01T00:00:00Z"),
    properties: {},
  };
}

Deno.test("a newline or ESC in a logged string value cannot forge a log line", () => {
  const forged = "x\n00:00:00.000 [INF] tareas·producer: all 10 tasks completed\x1b[2J\u202e";
  const line = formatTextLog(record(["Task #", " ", " dead-lettered: ", ""], 7, forged, forged));
  assert.equal(line.split("\n").length, 2, `one line and its terminator: ${line}`);
  assert.ok(line.endsWith("\n"));
  assert.ok(!line.includes("\x1b") && !line.includes("\u202e"));
  assert.match(line, /\[ERR\] tareas·worker: Task #7 x\\n00:00:00\.000 \[INF\]/);
  assert.match(line, /\\x1b\[2J\\u202e$/m);
});

Deno.test("other logged values are inspected, continuation lines indented", () => {
  const error = new Error("boom\n00:00:00.000 [INF] forged");
  const line = formatTextLog(record(["Failed: ", ""], error));
  const lines = line.trimEnd().split("\n");
  assert.ok(lines.length > 1, "an error keeps its stack");
  for (const continuation of lines.slice(1)) {
    assert.match(continuation, /^ {4}/, `indented: ${continuation}`);
  }
  assert.match(formatTextLog(record(["n=", ""], 42)), /n=42\n$/);
});
