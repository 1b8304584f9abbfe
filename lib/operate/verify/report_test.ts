/** The report's text: the verdict first, and the tasks named when something is wrong. */
import assert from "node:assert/strict";
import { check } from "./checker.ts";
import type { VerifyReport } from "./mod.ts";
import { renderReport } from "./report.ts";

function report(results: string[]): VerifyReport {
  const verdict = check({
    published: [{ taskId: "a", seq: 1 }, { taskId: "b", seq: 2 }],
    confirmed: new Set(["a", "b"]),
    results: results.map((taskId) => ({ taskId, status: "completed", result: undefined })),
    events: [],
    faults: [],
    census: { queued: new Set(), deadLettered: new Map(), results: [] },
  });
  return {
    settings: {
      queue: "q",
      tasks: 2,
      workers: 1,
      kills: 0,
      durationMs: { min: 1, max: 2 },
      prefetch: 1,
      concurrency: 1,
      heartbeat: 15,
      mode: "given",
    },
    broker: { product: "RabbitMQ", version: "3.10.8", describe: "amqp://guest:***@127.0.0.1" },
    tareas: "0.3.0",
    verdict,
    kills: [],
    end: "completed",
    elapsedMs: 1_000,
    publishMs: 10,
    workerExits: [],
    foreignWorkers: [],
  };
}

Deno.test("a run with everything completed reads PASS, lost 0", () => {
  const lines = renderReport(report(["a", "b"]));
  assert.equal(lines[0], "tareas verify: PASS");
  assert.ok(lines.includes("  lost          0"), lines.join("\n"));
  assert.ok(lines.includes("  tareas        0.3.0"));
});

Deno.test("a lost task makes the report FAIL and names it", () => {
  const lines = renderReport(report(["a"]));
  assert.equal(lines[0], "tareas verify: FAIL");
  assert.ok(lines.includes("  lost          1: #2 b"), lines.join("\n"));
  assert.ok(lines.includes("  verdict       1 lost"), lines.join("\n"));
});
