import assert from "node:assert/strict";
import type { TareasEvent } from "../core/events.ts";
import { buildTimeline } from "./replay.ts";
import type { Timeline, TimelineBar } from "./timeline.ts";
import { RECORDED, shuffled, task, WORKERS } from "../../testing/runs.ts";

function findBar(timeline: Timeline, worker: string, seq: number): TimelineBar {
  const row = timeline.rows.find((row) => row.worker === worker);
  const bar = row?.bars.find((bar) => bar.seq === seq);
  assert.ok(bar, `no bar for #${seq} on ${worker}`);
  return bar;
}

Deno.test("buildTimeline gives one row per worker in order of first appearance", () => {
  const timeline = buildTimeline(shuffled(RECORDED), { killed: ["worker-b"] });
  assert.deepEqual(timeline.rows.map((row) => row.worker), WORKERS);
  assert.deepEqual(timeline.rows.map((row) => row.bars.length), [5, 3, 4]);
  assert.deepEqual(timeline.rows.map((row) => row.killed), [false, true, false]);
  assert.deepEqual(timeline.rows.map((row) => row.lanes), [1, 1, 1]);
  assert.equal(timeline.start.toISOString(), "2025-03-01T10:00:00.000Z");
  assert.equal(timeline.end.toISOString(), "2025-03-01T10:00:05.050Z");
  const seqs = timeline.rows.flatMap((row) => row.bars.map((bar) => bar.seq));
  assert.deepEqual([...new Set(seqs)].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
});

Deno.test("buildTimeline matches each start to the end event of the same attempt", () => {
  const timeline = buildTimeline(RECORDED);
  const first = findBar(timeline, "worker-a", 1);
  assert.equal(first.status, "completed");
  assert.equal(first.label, "#1");
  assert.equal(first.durationMs, 1000);
  assert.equal(first.redelivered, false);
  assert.deepEqual(
    timeline.rows[0]?.bars.map((bar) => [bar.label, bar.status]),
    [["#1", "completed"], ["#5", "failed"], ["#8", "completed"], ["#9", "completed"], [
      "#10",
      "dead",
    ]],
  );
  assert.equal(findBar(timeline, "worker-a", 5).reason, "boom");
  assert.equal(findBar(timeline, "worker-a", 10).reason, "invalid payload");
  const retry = findBar(timeline, "worker-c", 5);
  assert.equal(retry.attempt, 2);
  assert.equal(retry.redelivered, true, "attempt > 1 counts as a redelivery");
});

Deno.test("a task held by a killed worker is interrupted and its redelivery completes elsewhere", () => {
  for (const killed of [["worker-b"], []]) {
    const timeline = buildTimeline(RECORDED, { killed });
    const interrupted = findBar(timeline, "worker-b", 7);
    assert.equal(interrupted.status, "interrupted");
    assert.equal(interrupted.attempt, 1);
    assert.equal(interrupted.redelivered, false);
    // The start was worker-b's last event, so the bar ends when #7 next started (on worker-c).
    assert.equal(interrupted.start.toISOString(), "2025-03-01T10:00:02.050Z");
    assert.equal(interrupted.end.toISOString(), "2025-03-01T10:00:03.100Z");
    const redelivery = findBar(timeline, "worker-c", 7);
    assert.equal(redelivery.status, "completed");
    assert.equal(redelivery.attempt, 2);
    assert.equal(redelivery.redelivered, true);
  }
});

Deno.test("an interrupted attempt ends at the worker's last event when that came later", () => {
  // worker-x ran two tasks concurrently, finished one, then died holding the other.
  const events: TareasEvent[] = [
    { type: "worker.online", worker: "worker-x", at: "2025-03-01T10:00:00.000Z" },
    task("task.started", "worker-x", 1, 1, "00.100"),
    task("task.started", "worker-x", 2, 1, "00.200"),
    task("task.completed", "worker-x", 2, 1, "01.000"),
    task("task.started", "worker-y", 1, 2, "03.000", { redelivered: true }),
    task("task.completed", "worker-y", 1, 2, "04.000", { redelivered: true }),
  ];
  const timeline = buildTimeline(events, { killed: ["worker-x"] });
  const bar = findBar(timeline, "worker-x", 1);
  assert.equal(bar.status, "interrupted");
  assert.equal(bar.end.toISOString(), "2025-03-01T10:00:01.000Z");
  assert.equal(timeline.rows[0]?.lanes, 2);
  assert.deepEqual(timeline.rows[0]?.bars.map((bar) => bar.lane), [0, 1]);
});

Deno.test("an attempt with no end and no sign of interruption is running until now", () => {
  const events: TareasEvent[] = [task("task.started", "worker-a", 1, 1, "00.000")];
  const now = new Date("2025-03-01T10:00:02.000Z");
  const timeline = buildTimeline(events, { now });
  const bar = findBar(timeline, "worker-a", 1);
  assert.equal(bar.status, "running");
  assert.equal(bar.end.getTime(), now.getTime());
  assert.equal(timeline.end.getTime(), now.getTime());
  assert.equal(
    buildTimeline(events, { now, killed: ["worker-a"] }).rows[0]?.bars[0]?.status,
    "interrupted",
  );
});

Deno.test("an end event without its start gives a bar of its duration", () => {
  const events = [task("task.completed", "worker-a", 3, 1, "02.000", { durationMs: 1500 })];
  const timeline = buildTimeline(events);
  const bar = findBar(timeline, "worker-a", 3);
  assert.equal(bar.start.toISOString(), "2025-03-01T10:00:00.500Z");
  assert.equal(timeline.start.toISOString(), "2025-03-01T10:00:00.500Z");
});

Deno.test("buildTimeline of no events is empty", () => {
  const timeline = buildTimeline([]);
  assert.deepEqual(timeline.rows, []);
  assert.equal(timeline.tasks, 0);
  assert.equal(timeline.aggregated, false);
});

Deno.test("buildTimeline counts attempts per status and distinct tasks", () => {
  const timeline = buildTimeline(RECORDED, { killed: ["worker-b"] });
  assert.equal(timeline.tasks, 10);
  assert.deepEqual(timeline.counts, {
    completed: 9,
    failed: 1,
    dead: 1,
    interrupted: 1,
    running: 0,
  });
});

Deno.test("buildTimeline aggregates past the exact limit, keeping the counts exact", () => {
  // 40 workers of 100 one-second tasks each: 4000 attempts, past the default 3000.
  const events: TareasEvent[] = [];
  for (let w = 0; w < 40; w++) {
    for (let i = 0; i < 100; i++) {
      const seq = w * 100 + i + 1;
      const at = new Date(Date.parse("2025-03-01T10:00:00Z") + i * 1000).toISOString();
      const end = new Date(Date.parse(at) + 900).toISOString();
      const base = { taskId: `t${seq}`, seq, attempt: 1, redelivered: false };
      events.push({ type: "task.started", worker: `w${w}`, at, ...base });
      events.push({ type: "task.completed", worker: `w${w}`, at: end, ...base, durationMs: 900 });
    }
  }
  const timeline = buildTimeline(events);
  assert.equal(timeline.aggregated, true);
  assert.equal(timeline.tasks, 4000);
  assert.equal(timeline.counts.completed, 4000);
  assert.equal(timeline.rows.length, 40);
  for (const row of timeline.rows) {
    assert.deepEqual(row.bars, []);
    assert.ok(row.strip, `a strip for ${row.worker}`);
    assert.equal(row.strip.counts.completed.reduce((sum, count) => sum + count, 0), 100);
  }
});

Deno.test("buildTimeline leaves out events stamped far after now or before startedAt", () => {
  const now = new Date("2025-03-01T10:00:06.000Z");
  const forged: TareasEvent[] = [
    { ...task("task.completed", "forger", 11, 1, "00.000"), at: "+275760-09-13T00:00:00.000Z" },
    { ...task("task.started", "forger", 12, 1, "00.000"), at: "1970-01-01T00:00:00.000Z" },
  ];
  const plain = buildTimeline(RECORDED, { now });
  const timeline = buildTimeline([...RECORDED, ...forged], {
    now,
    startedAt: Date.parse("2025-03-01T10:00:00.000Z"),
  });
  assert.equal(timeline.outOfRange, 2);
  assert.deepEqual({ ...timeline, outOfRange: 0 }, plain, "the same timeline, and a count");
  // Without startedAt only the future is bounded: a past stays a past (a record of old events).
  assert.equal(buildTimeline([...RECORDED, ...forged], { now }).outOfRange, 1);
});
