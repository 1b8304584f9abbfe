import assert from "node:assert/strict";
import type { TareasEvent, TaskEvent } from "../core/events.ts";
import { RunRecord, type RunRecordOptions } from "./run_record.ts";
import { buildTimeline, summarize } from "./replay.ts";
import { RECORDED, shuffled, syntheticRun, task, taskId } from "../../testing/runs.ts";

const TEN = Array.from({ length: 10 }, (_, i) => taskId(i + 1));

/** The runs of `testing/runs.ts` started then: a record made now is told so. */
const STARTED = { startedAt: Date.parse("2025-03-01T10:00:00Z") };

function recorded(
  events: Iterable<TareasEvent>,
  taskIds?: Iterable<string>,
  options: RunRecordOptions = {},
) {
  const record = new RunRecord(taskIds, { ...STARTED, ...options });
  for (const event of events) record.record(event);
  return record;
}

Deno.test("the summary of a run tells completed, dead-lettered and redelivered tasks apart", () => {
  const summary = recorded(RECORDED, TEN).summary();
  assert.equal(summary.total, 10);
  assert.equal(summary.completed, 9);
  assert.equal(summary.deadLettered, 1);
  assert.equal(summary.missing, 0);
  assert.deepEqual(summary.missingIds, []);
  assert.deepEqual(
    summary.redelivered.map((note) => [note.seq, note.worker, note.attempt, note.redelivered]),
    [[7, "worker-c", 2, true], [5, "worker-c", 2, false]],
  );
  assert.deepEqual(summary.duplicates, []);
  assert.deepEqual(summary.dead, [{
    seq: 10,
    taskId: taskId(10),
    worker: "worker-a",
    attempt: 1,
    redelivered: false,
    reason: "invalid payload",
  }]);
  assert.deepEqual([...summary.workers], [
    ["worker-b", { completed: 2, busyMs: 1700 }],
    ["worker-a", { completed: 3, busyMs: 3000 }],
    ["worker-c", { completed: 4, busyMs: 4500 }],
  ]);
  assert.deepEqual(summary.omitted, { redelivered: 0, duplicates: 0, dead: 0, missingIds: 0 });
  assert.deepEqual(summarize(RECORDED, TEN), summary, "summarize is the record's summary");
});

Deno.test("tasks of other runs are ignored and tasks never heard of are missing", () => {
  const record = new RunRecord([taskId(1), taskId(2), "never-seen"], STARTED);
  assert.deepEqual(record.counts(), {
    total: 3,
    completed: 0,
    deadLettered: 0,
    finished: 0,
    missing: 3,
    events: 0,
  });
  for (const event of RECORDED) record.record(event);
  assert.deepEqual(record.counts(), {
    total: 3,
    completed: 2,
    deadLettered: 0,
    finished: 2,
    missing: 1,
    events: RECORDED.length,
  });
  const summary = record.summary();
  assert.deepEqual(summary.missingIds, ["never-seen"]);
  assert.deepEqual(summary.redelivered, [], "#7 and #5 are not in this run");
  const timeline = record.timeline();
  assert.equal(timeline.tasks, 2);
  assert.deepEqual(
    timeline.rows.map((row) => [row.worker, row.bars.map((bar) => bar.label)]),
    [["worker-a", ["#1"]], ["worker-b", ["#2"]], ["worker-c", []]],
  );
});

Deno.test("a second completion is a duplicate naming the first worker, not a redelivery", () => {
  const record = recorded([
    task("task.completed", "crashy", 1, 1, "01.000", { durationMs: 1000 }),
    task("task.completed", "steady", 1, 2, "02.000", { durationMs: 900, redelivered: true }),
    task("task.completed", "steady", 1, 3, "03.000", { redelivered: true }),
  ]);
  const summary = record.summary();
  assert.equal(summary.completed, 1);
  assert.deepEqual(summary.redelivered, []);
  assert.deepEqual(summary.duplicates.map((note) => [note.worker, note.firstWorker]), [
    ["steady", "crashy"],
    ["steady", "crashy"],
  ]);
  assert.deepEqual(record.outcome(taskId(1)), {
    completions: 3,
    dead: false,
    attempts: 3,
    firstWorker: "crashy",
  });
  assert.equal(record.outcome("unknown"), undefined);
});

Deno.test("the lists of notable tasks are bounded and count the rest", () => {
  const events = Array.from(
    { length: 5 },
    (_, i) => task("task.dead", "w", i + 1, 1, `0${i}.000`, { reason: `reason ${i}` }),
  );
  const record = recorded(events, [...TEN, "x", "y"], { notableLimit: 2 });
  const summary = record.summary();
  assert.deepEqual(summary.dead.map((note) => note.reason), ["reason 0", "reason 1"]);
  assert.equal(summary.omitted.dead, 3);
  assert.equal(summary.deadLettered, 5);
  assert.equal(summary.missing, 7);
  assert.equal(summary.missingIds.length, 2);
  assert.equal(summary.omitted.missingIds, 5);
  record.record(task("task.dead", "w", 1, 2, "09.000", { reason: "again" }));
  assert.equal(record.summary().deadLettered, 5, "a task is dead-lettered once");
});

Deno.test("events with odd fields are kept out or given defaults, never thrown on", () => {
  const odd = [
    { type: "task.completed", worker: "w", at: "2025-03-01T10:00:01Z" },
    { type: "task.started", worker: 42, at: "2025-03-01T10:00:01Z", taskId: "t1" },
    { type: "task.completed", worker: "w", at: "yesterday", taskId: "t2", seq: 2, attempt: 1 },
    {
      type: "task.dead",
      worker: "w",
      at: "2025-03-01T10:00:02Z",
      taskId: "t3",
      seq: "3",
      attempt: -4,
      durationMs: "long",
      reason: { toString: "<b>" },
    },
  ] as unknown as TareasEvent[];
  const record = recorded(odd);
  assert.deepEqual(record.counts(), {
    total: 2,
    completed: 1,
    deadLettered: 1,
    finished: 2,
    missing: 0,
    events: 3,
  });
  assert.deepEqual(record.summary().dead, [{
    seq: 0,
    taskId: "t3",
    worker: "w",
    attempt: 1,
    redelivered: false,
  }]);
  const timeline = record.timeline();
  assert.equal(timeline.tasks, 1, "the completion dated yesterday is not drawn");
  assert.deepEqual(timeline.rows[0]?.bars.map((bar) => [bar.label, bar.status]), [["#0", "dead"]]);
});

Deno.test("a start that arrives after its task's later attempt is interrupted, not running", () => {
  const late = task("task.started", "worker-b", 7, 1, "02.050");
  const events = RECORDED.filter((event) => event !== RECORDED[13]);
  assert.equal(RECORDED[13]?.at, late.at, "the fixture's start of #7 on worker-b");
  const record = recorded([...events, late]);
  const bar = record.timeline().rows.find((row) => row.worker === "worker-b")?.bars.at(-1);
  assert.equal(bar?.label, "#7");
  assert.equal(bar?.status, "interrupted");
});

Deno.test("the record's timeline is buildTimeline's when events arrive in time order", () => {
  const now = new Date("2025-03-01T10:00:06Z");
  for (const options of [{}, { killed: ["worker-b"] }, { now }]) {
    assert.deepEqual(recorded(RECORDED).timeline(options), buildTimeline(RECORDED, options));
    assert.deepEqual(buildTimeline(shuffled(RECORDED), options), buildTimeline(RECORDED, options));
  }
});

Deno.test("a snapshot is not changed by later events, and taking one changes nothing", () => {
  const record = recorded(RECORDED.slice(0, 14));
  const before = record.timeline();
  const summary = record.summary();
  assert.deepEqual(record.timeline(), before);
  for (const event of RECORDED.slice(14)) record.record(event);
  assert.equal(before.rows.flatMap((row) => row.bars).length, 7, "4 completed, 3 running");
  assert.equal(summary.completed, 4);
  assert.deepEqual(record.timeline(), buildTimeline(RECORDED));
});

Deno.test("past exactAttempts the timeline counts attempts per worker over merged buckets", () => {
  const events: TareasEvent[] = [];
  const at = (ms: number) => new Date(Date.parse("2025-03-01T10:00:00Z") + ms).toISOString();
  for (let i = 0; i < 2000; i++) {
    // Ever longer gaps, so the buckets must merge many times as the run goes on.
    const startMs = i * i * 50;
    const base = { taskId: `t${i}`, seq: i + 1, attempt: 1, redelivered: false };
    const worker = `w${i % 3}`;
    events.push({ type: "task.started", worker, at: at(startMs), ...base });
    const end = i % 10 === 0 ? "task.failed" : "task.completed";
    events.push({ type: end, worker, at: at(startMs + 40), ...base, durationMs: 40 });
  }
  events.push(task("task.started", "w0", 1, 9, "00.000"));
  const record = recorded(events, undefined, { exactAttempts: 10 });
  const timeline = record.timeline({ killed: ["w0"] });
  assert.equal(timeline.aggregated, true);
  assert.deepEqual(timeline.counts, {
    completed: 1800,
    failed: 200,
    dead: 0,
    interrupted: 1,
    running: 0,
  });
  const sum = (counts: Uint32Array | undefined) =>
    (counts ?? new Uint32Array()).reduce((a, b) => a + b, 0);
  for (const row of timeline.rows) {
    assert.ok(row.strip);
    assert.ok(row.strip.counts.completed.length <= 512, "at most 512 buckets");
    const reach = row.strip.start.getTime() + row.strip.bucketMs * row.strip.counts.dead.length;
    assert.ok(reach > timeline.end.getTime(), "the strip reaches the end of the run");
  }
  assert.equal(
    sum(new Uint32Array(timeline.rows.map((row) => sum(row.strip?.counts.completed)))),
    1800,
  );
  assert.deepEqual(timeline.rows.map((row) => sum(row.strip?.counts.failed)), [67, 67, 66]);
  assert.equal(sum(timeline.rows[0]?.strip?.counts.interrupted), 1, "w0 was killed holding #1");
});

Deno.test("a record of a synthetic run of 100 000 tasks has every count right", () => {
  const run = syntheticRun(100_000, 8);
  const ids = Array.from({ length: run.tasks }, (_, i) => run.id(i));
  const record = recorded(run.events, ids);
  const summary = record.summary();
  assert.equal(summary.completed, run.tasks - run.dead);
  assert.equal(summary.deadLettered, run.dead);
  assert.equal(summary.missing, 0);
  assert.equal(summary.redelivered.length + summary.omitted.redelivered, run.retried);
  assert.equal(summary.duplicates.length + summary.omitted.duplicates, run.duplicates);
  assert.equal(summary.dead.length + summary.omitted.dead, run.dead);
  assert.equal(summary.workers.size, 8);
  const timeline = record.timeline();
  assert.equal(timeline.aggregated, true);
  assert.equal(timeline.tasks, run.tasks);
  assert.equal(timeline.counts.dead, run.dead);
  assert.equal(timeline.counts.failed, run.retried);
});

Deno.test("attempts that never end count towards the exact limit too", () => {
  const starts = Array.from(
    { length: 50 },
    (_, i) => task("task.started", "w", i + 1, 1, "01.000"),
  );
  const record = recorded(starts, undefined, { exactAttempts: 20 });
  const timeline = record.timeline({ killed: ["w"] });
  assert.equal(timeline.aggregated, true);
  assert.equal(timeline.counts.interrupted, 50);
  assert.equal(timeline.rows[0]?.strip?.counts.interrupted.reduce((a, b) => a + b, 0), 50);
});

/** A `task.completed` of task `seq` of the recorded run, by `worker`, at `at`. */
function completion(worker: string, seq: number, at: string): TaskEvent {
  return {
    ...task("task.completed", worker, seq, 1, "00.000", { durationMs: 5 }) as TaskEvent,
    at,
  };
}

Deno.test("20,000 forged worker names: at most maxWorkers kept, the real workers among them", () => {
  // Tried: 20,000 forged names made 20,017 summary lines and an 8.6 MB SVG.
  const record = recorded(RECORDED, TEN);
  const at = "2025-03-01T10:00:03.000Z";
  for (let i = 0; i < 20_000; i++) {
    record.record({ type: "worker.status", worker: `forged-${i}`, at });
  }
  for (let i = 0; i < 20_000; i++) record.record(completion(`forger-${i}`, 1, at));
  // 997 idle names held the places the three real workers left; each forger with a completion
  // took one of them, and past that were not tracked.
  assert.deepEqual(record.bounds(), {
    outOfRange: 0,
    workersForgotten: 20_000,
    untrackedEvents: 19_003,
  });
  const summary = record.summary();
  assert.equal(summary.workers.size, 1000);
  assert.deepEqual([...summary.workers.keys()].slice(0, 3), ["worker-b", "worker-a", "worker-c"]);
  assert.deepEqual(summary.untracked, { completed: 19_003, busyMs: 19_003 * 5 });
  assert.equal(summary.completed, 9, "completions of a task done already are duplicates");
  assert.equal(record.counts().missing, 0);

  const timeline = record.timeline();
  assert.equal(timeline.rows.length, 100, "the timeline draws the busiest 100");
  assert.deepEqual(timeline.rows.slice(0, 3).map((row) => row.worker), [
    "worker-a",
    "worker-b",
    "worker-c",
  ]);
  assert.equal(timeline.workersNotShown, 900 + 20_000);
  assert.equal(timeline.untrackedEvents, 19_003);
});

Deno.test("forged names never push out a worker that runs tasks, even one that came late", () => {
  const record = new RunRecord(undefined, { ...STARTED, maxWorkers: 10 });
  const at = (s: string) => `2025-03-01T10:00:${s}Z`;
  for (let i = 0; i < 50; i++) {
    record.record({ type: "worker.status", worker: `forged-${i}`, at: at("01.000") });
  }
  record.record({ type: "worker.online", worker: "late", at: at("02.000") });
  for (let i = 50; i < 100; i++) {
    record.record({ type: "worker.status", worker: `forged-${i}`, at: at("02.500") });
  }
  // "late" was forgotten while idle; its task makes it tracked again, for good.
  record.record(task("task.started", "late", 1, 1, "03.000"));
  record.record(task("task.completed", "late", 1, 1, "04.000", { durationMs: 1000 }));
  for (let i = 100; i < 150; i++) {
    record.record({ type: "worker.status", worker: `forged-${i}`, at: at("05.000") });
  }
  assert.deepEqual([...record.summary().workers.keys()], ["late"]);
  const rows = record.timeline({ maxRows: 3 }).rows;
  assert.equal(rows.length, 3);
  assert.ok(rows.some((row) => row.worker === "late" && row.bars.length === 1), "late is drawn");
});

Deno.test("events stamped outside the run's window are counted, not drawn", () => {
  const startedAt = Date.parse("2025-03-01T10:00:00Z");
  const record = new RunRecord(TEN, { startedAt });
  const receivedAt = startedAt + 5_000;
  for (const event of RECORDED) record.record(event, receivedAt);
  const real = record.timeline();
  // Tried: one forged `at` of year 275760 stretched a real run's timeline to "17280000000000s".
  record.record(completion("forger", 10, "+275760-09-13T00:00:00.000Z"), receivedAt);
  record.record(completion("forger", 9, "1970-01-01T00:00:00.000Z"), receivedAt);
  // Within a clock's skew of the window both ways: kept.
  record.record(completion("skewed", 9, "2025-03-01T09:59:30.000Z"), receivedAt);
  record.record(completion("skewed", 10, "2025-03-01T10:00:50.000Z"), receivedAt);
  // Later than it was received by more than the skew: a clock far ahead, or a forgery.
  record.record(completion("ahead", 10, "2025-03-01T10:01:06.000Z"), receivedAt);
  // No start seen and a forged duration: the bar does not reach back before the window.
  record.record(
    { ...completion("slow", 8, "2025-03-01T10:00:04.000Z"), durationMs: 1e15 },
    receivedAt,
  );
  assert.equal(record.bounds().outOfRange, 3);
  const timeline = record.timeline();
  assert.equal(timeline.outOfRange, 3);
  assert.equal(timeline.start.toISOString(), "2025-03-01T09:59:00.000Z");
  assert.equal(timeline.end.toISOString(), "2025-03-01T10:00:50.000Z");
  assert.ok(timeline.start <= real.start && timeline.end >= real.end);
  assert.deepEqual(timeline.rows.map((row) => row.worker), [
    "skewed", // first seen at 09:59:30
    ...real.rows.map((row) => row.worker),
    "slow",
  ]);
  assert.equal(record.summary().completed, 10, "events out of the window still count as done");
});
