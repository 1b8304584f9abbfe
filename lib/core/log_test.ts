import assert from "node:assert/strict";
import type { LogRecord } from "../deps/logtape.ts";
import { formatTextLog, holdTerminalLine, log, setupLogging } from "./log.ts";

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

Deno.test("a log line clears the line held in place before it and redraws it after", async () => {
  const output: string[] = [];
  const release = holdTerminalLine({
    clear: () => output.push("<clear>"),
    redraw: () => output.push("<redraw>"),
  });
  const write = Deno.stderr.writeSync;
  Deno.stderr.writeSync = (bytes: Uint8Array) => {
    output.push(new TextDecoder().decode(bytes));
    return bytes.byteLength;
  };
  try {
    await setupLogging({ level: "info", format: "text" });
    log("producer").warn("Nothing is consuming {queue}", { queue: "q" });
    release();
    log("producer").warn("After the bar");
  } finally {
    Deno.stderr.writeSync = write;
    await setupLogging({ level: "error", format: "text" });
  }
  assert.equal(output.length, 4, output.join(""));
  assert.equal(output[0], "<clear>");
  assert.match(output[1]!, /\[WRN\] tareas·producer: Nothing is consuming q\n$/);
  assert.equal(output[2], "<redraw>");
  assert.match(output[3]!, /After the bar\n$/, "released: no more clearing");
});
