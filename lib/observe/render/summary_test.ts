import assert from "node:assert/strict";
import { RunRecord } from "../run_record.ts";
import { summarize } from "../replay.ts";
import { RECORDED, task, taskId } from "../../../testing/runs.ts";
import { renderSummary } from "./summary.ts";

const TEN = Array.from({ length: 10 }, (_, i) => taskId(i + 1));

Deno.test("renderSummary prints the totals, the workers and every notable task", () => {
  const text = renderSummary(summarize(RECORDED, [...TEN, "never-seen"]));
  assert.equal(
    text,
    [
      "9/11 tasks completed",
      "1 task dead-lettered",
      "1 task missing: neither completed nor dead-lettered",
      "  worker    tasks  busy",
      "  worker-b      2  1.7 s",
      "  worker-a      3  3.0 s",
      "  worker-c      4  4.5 s",
      `  task #7 ${taskId(7)} completed by worker-c on attempt 2 (redelivered)`,
      `  task #5 ${taskId(5)} completed by worker-c on attempt 2 (retried)`,
      `  task #10 ${taskId(10)} dead-lettered: invalid payload`,
      "  task never-seen missing",
    ].join("\n"),
  );
});

Deno.test("renderSummary's first line is only the count when every task completed", () => {
  const events = [task("task.completed", "w", 1, 1, "01.000", { durationMs: 500 })];
  const text = renderSummary(summarize(events, [taskId(1)]));
  assert.match(text, /^1\/1 tasks completed$/m);
  assert.doesNotMatch(text, /dead-lettered|missing/);
});

Deno.test("renderSummary names duplicates and the worker that completed first", () => {
  const events = [
    task("task.completed", "crashy", 3, 1, "01.000"),
    task("task.completed", "steady", 3, 2, "02.000", { redelivered: true }),
  ];
  const text = renderSummary(summarize(events, [taskId(3)]));
  assert.match(
    text,
    new RegExp(`task #3 ${taskId(3)} completed again by steady \\(duplicate\\), first by crashy`),
  );
});

Deno.test("renderSummary cuts long lists with … and N more", () => {
  const record = new RunRecord(undefined, { notableLimit: 30 });
  for (let seq = 1; seq <= 50; seq++) {
    record.record(task("task.dead", "w", seq, 1, "01.000", { reason: "bad" }));
  }
  const text = renderSummary(record.summary(), { limit: 5 });
  assert.equal(text.match(/dead-lettered: bad/g)?.length, 5);
  assert.match(text, /^ {2}… and 45 more dead-lettered$/m, "5 cut from the list, 20 never kept");
  assert.match(text, /^50 tasks dead-lettered$/m);
});

Deno.test("renderSummary escapes control characters in names, ids and reasons", () => {
  const forged = "\n2026-01-01 00:00:00.000 [INF] tareas·producer: all good\x1b[2J\u202e";
  const events = [
    { ...task("task.completed", `w${forged}`, 1, 2, "01.000"), taskId: `id${forged}` },
    { ...task("task.completed", `v${forged}`, 1, 3, "02.000"), taskId: `id${forged}` },
    { ...task("task.dead", `u${forged}`, 2, 1, "03.000"), reason: `r${forged}` },
  ];
  const text = renderSummary(summarize(events, [`id${forged}`, taskId(2)]));
  assert.ok(!text.includes("\x1b") && !text.includes("\u202e"), "no escape or bidi override");
  const lines = text.split("\n");
  assert.equal(lines.length, 8, text);
  assert.ok(!lines.some((line) => line.startsWith("2026-")), "no forged log line");
  assert.match(text, /w\\n2026-01-01 .*\\x1b\[2J\\u202e/);
  assert.match(text, /dead-lettered: r\\n2026/);
});

Deno.test("renderSummary lists the busiest workers, and sums the rest in one line each", () => {
  // Tried: 20,000 forged worker names with a completion each made 20,017 summary lines.
  const record = new RunRecord([taskId(1), taskId(2)]);
  for (let seq = 1; seq <= 2; seq++) {
    for (let n = 0; n < 3; n++) {
      record.record(task("task.completed", "honest", seq, 1, "02.000", { durationMs: 1000 }));
    }
  }
  for (let i = 0; i < 20_000; i++) {
    record.record(task("task.completed", `forger-${i}`, 1, 1, "03.000", { durationMs: 1 }));
  }
  const lines = renderSummary(record.summary(), { limit: 3 }).split("\n");
  assert.ok(lines.length < 70, `${lines.length} lines`);
  assert.equal(lines[0], "2/2 tasks completed");
  assert.equal(lines[2], "  honest         6  6.0 s", "the busiest is listed");
  assert.equal(lines.filter((line) => /^ {2}forger-\d+ /.test(line)).length, 49);
  // 999 forgers tracked (the record keeps 1000 workers), 49 of them listed.
  assert.ok(lines.includes("  … and 950 more workers: 950 tasks"), lines.join("\n"));
  assert.ok(lines.includes("  … and workers not tracked one by one: 19001 tasks"));
});
