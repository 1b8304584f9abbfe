import assert from "node:assert/strict";
import type { RunningTask } from "../observe/running.ts";
import { progressText, runningLines, runningSummary, taskLabel } from "./progress_text.ts";

function running(seq: number, fields: Partial<RunningTask> = {}): RunningTask {
  return {
    taskId: `task-${seq}-${"x".repeat(20)}`,
    seq,
    attempt: 1,
    worker: "w",
    since: "2026-01-01T00:00:00.000Z",
    ...fields,
  };
}

Deno.test("a fraction is a percentage rounded down, an object its short JSON, escaped", () => {
  assert.equal(progressText(0), "0%");
  assert.equal(progressText(0.4), "40%");
  assert.equal(progressText(0.999), "99%", "100% means done");
  assert.equal(progressText(1), "100%");
  assert.equal(progressText({ stage: "upload", done: 3 }), '{"stage":"upload","done":3}');
  assert.equal(progressText({ text: "\x1b[2J" }), String.raw`{"text":"\u001b[2J"}`);
  assert.equal(progressText({ long: "y".repeat(100) }, 20), `{"long":"${"y".repeat(10)}…`);
  assert.equal(progressText({ evil: "\u202e" }), '{"evil":"\\u202e"}');
});

Deno.test("a running task is named by its seq and its name, or by the start of its id", () => {
  assert.equal(taskLabel(running(3)), "#3");
  assert.equal(taskLabel(running(3, { name: "default" })), "#3");
  assert.equal(taskLabel(running(3, { name: "resize" })), "#3 resize");
  assert.equal(taskLabel(running(0, { taskId: "7d0f1c2e-aaaa-bbbb" })), "7d0f1c2e-aaa…");
  assert.equal(taskLabel(running(1, { name: "evil\nname" })), "#1 evil\\nname");
});

Deno.test("status lists up to three running tasks under a worker, then how many more", () => {
  assert.deepEqual(runningLines([]), []);
  assert.deepEqual(
    runningLines([
      running(3, { progress: 0.4 }),
      running(4, { name: "email", progress: { stage: "upload" } }),
      running(5),
      running(6),
      running(7),
    ]),
    ["task #3 40%", 'task #4 email {"stage":"upload"}', "task #5", "… and 2 more running"],
  );
});

Deno.test("the progress line of --wait names the reporting tasks within its width", () => {
  assert.equal(runningSummary([running(1)]), "", "nothing reported yet: nothing shown");
  assert.equal(
    runningSummary([running(1, { progress: 0.4 }), running(2), running(3, { progress: 0.75 })]),
    "running: #1 40%, #3 75%",
  );
  const many = Array.from({ length: 20 }, (_, i) => running(i + 1, { progress: 0.5 }));
  const line = runningSummary(many, 50);
  assert.ok(line.length <= 50, line);
  assert.match(line, /^running: #1 50%, #2 50%, .* and \d+ more$/);
  const shown = line.match(/#\d+/g)!.length;
  assert.equal(Number(/and (\d+) more$/.exec(line)![1]), 20 - shown, "every task counted");
  assert.equal(
    runningSummary([running(1, { progress: { note: "z".repeat(200) } })], 20),
    "running: 1 reporting progress",
  );
});
