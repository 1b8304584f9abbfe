import assert from "node:assert/strict";
import { Progress, type ProgressOptions } from "./progress.ts";

const CLEAR = "\r\x1b[2K";

/** A Progress on a fake clock that records what it writes. */
function setup(options: Partial<ProgressOptions> & { total: number; isTty: boolean }) {
  const clock = { ms: 1_000_000 };
  const writes: string[] = [];
  const progress = new Progress({
    now: () => clock.ms,
    write: (text) => writes.push(text),
    ...options,
  });
  const at = (elapsedMs: number) => (clock.ms = 1_000_000 + elapsedMs);
  return { progress, writes, at };
}

Deno.test("without a terminal, progress lines are throttled to one per interval", () => {
  const { progress, writes, at } = setup({ total: 10, isTty: false });
  for (const [ms, done] of [[0, 0], [500, 1], [1000, 2], [1999, 3]] as const) {
    at(ms);
    progress.update({ completed: done, deadLettered: 0 });
  }
  assert.deepEqual(writes, [], "nothing in the first interval");
  at(2000);
  progress.update({ completed: 3, deadLettered: 1 });
  assert.deepEqual(writes, ["progress: 3/10 completed, 1 dead-lettered, 2.0 tasks/s, ETA 3s\n"]);
  at(3999);
  progress.update({ completed: 5, deadLettered: 1 });
  assert.equal(writes.length, 1, "still inside the interval");
  at(4000);
  progress.update({ completed: 6, deadLettered: 1 });
  assert.deepEqual(writes.slice(1), [
    "progress: 6/10 completed, 1 dead-lettered, 1.8 tasks/s, ETA 2s\n",
  ]);
});

Deno.test("without a terminal, finish always writes a last line with the elapsed time", () => {
  const { progress, writes, at } = setup({ total: 10, isTty: false });
  at(300);
  progress.update({ completed: 10, deadLettered: 0 });
  at(400);
  progress.finish();
  assert.deepEqual(writes, [
    "progress: 10/10 completed, 0 dead-lettered, 25.0 tasks/s, took 0.4s\n",
  ]);
  progress.finish();
  progress.update({ completed: 11, deadLettered: 0 });
  assert.equal(writes.length, 1, "finish is final and idempotent");
});

Deno.test("the interval is configurable and the ETA is unknown while nothing is done", () => {
  const { progress, writes, at } = setup({ total: 5, isTty: false, intervalMs: 500 });
  at(500);
  progress.update({ completed: 0, deadLettered: 0 });
  at(1000);
  progress.update({ completed: 1, deadLettered: 0 });
  at(1200);
  progress.finish();
  assert.deepEqual(writes, [
    "progress: 0/5 completed, 0 dead-lettered, 0.0 tasks/s, ETA ?\n",
    "progress: 1/5 completed, 0 dead-lettered, 1.0 tasks/s, ETA 4s\n",
    "progress: 1/5 completed, 0 dead-lettered, 0.8 tasks/s, took 1.2s\n",
  ]);
});

Deno.test("long ETAs and fast rates are written compactly", () => {
  const { progress, writes, at } = setup({ total: 100_000, isTty: false });
  at(10_000);
  progress.update({ completed: 4997, deadLettered: 3 });
  at(20_000);
  progress.update({ completed: 5097, deadLettered: 3 });
  assert.deepEqual(writes, [
    "progress: 4997/100000 completed, 3 dead-lettered, 500 tasks/s, ETA 3m10s\n",
    "progress: 5097/100000 completed, 3 dead-lettered, 255 tasks/s, ETA 6m13s\n",
  ]);
});

Deno.test("on a terminal, one line is redrawn in place as a bar", () => {
  const { progress, writes, at } = setup({ total: 10, isTty: true });
  at(2857);
  progress.update({ completed: 6, deadLettered: 0 });
  assert.deepEqual(writes, [`${CLEAR}[██████░░░░] 6/10 completed  0 dead-lettered  2.1/s  ETA 2s`]);
  at(3500);
  progress.update({ completed: 7, deadLettered: 1 });
  assert.equal(writes[1], `${CLEAR}[████████░░] 7/10 completed  1 dead-lettered  2.3/s  ETA 1s`);
  at(4000);
  progress.update({ completed: 9, deadLettered: 1 });
  at(4800);
  progress.finish();
  assert.deepEqual(writes.slice(2), [
    `${CLEAR}[██████████] 9/10 completed  1 dead-lettered  2.5/s  ETA 0s`,
    `${CLEAR}[██████████] 9/10 completed  1 dead-lettered  2.1/s  took 4.8s\n`,
  ]);
  assert.ok(writes.every((text) => !text.slice(CLEAR.length).includes("\r")));
});

Deno.test("on a terminal, redraws are throttled and unchanged lines skipped", () => {
  const { progress, writes, at } = setup({ total: 4, isTty: true, redrawMs: 100 });
  at(0);
  progress.update({ completed: 0, deadLettered: 0 });
  at(50);
  progress.update({ completed: 1, deadLettered: 0 });
  assert.equal(writes.length, 1, "second update within 100 ms");
  at(150);
  progress.update({ completed: 1, deadLettered: 0 });
  at(300);
  progress.update({ completed: 1, deadLettered: 0 });
  assert.deepEqual(writes, [
    `${CLEAR}[░░░░░░░░░░] 0/4 completed  0 dead-lettered  0.0/s  ETA ?`,
    `${CLEAR}[██░░░░░░░░] 1/4 completed  0 dead-lettered  6.7/s  ETA 1s`,
    `${CLEAR}[██░░░░░░░░] 1/4 completed  0 dead-lettered  3.3/s  ETA 1s`,
  ]);

  const idle = setup({ total: 4, isTty: true });
  for (const ms of [0, 200, 400]) {
    idle.at(ms);
    idle.progress.update({ completed: 0, deadLettered: 0 });
  }
  assert.deepEqual(idle.writes, [
    `${CLEAR}[░░░░░░░░░░] 0/4 completed  0 dead-lettered  0.0/s  ETA ?`,
  ]);
});

Deno.test("a run of no tasks shows a full bar", () => {
  const { progress, writes, at } = setup({ total: 0, isTty: true, barWidth: 4 });
  at(100);
  progress.finish();
  assert.deepEqual(writes, [`${CLEAR}[████] 0/0 completed  0 dead-lettered  0.0/s  took 0.1s\n`]);
  assert.throws(() => new Progress({ total: -1, isTty: false, write: () => {} }), RangeError);
});

Deno.test("on a terminal, the bar can be cleared for another line and drawn again after it", () => {
  const { progress, writes, at } = setup({ total: 10, isTty: true });
  progress.clear();
  progress.redraw();
  assert.deepEqual(writes, [], "nothing drawn yet: nothing to clear or redraw");
  at(0);
  progress.update({ completed: 1, deadLettered: 0 });
  const bar = writes.at(-1)!;
  writes.length = 0;
  progress.clear();
  progress.redraw();
  assert.deepEqual(writes, [CLEAR, bar]);
  progress.finish();
  writes.length = 0;
  progress.clear();
  progress.redraw();
  assert.deepEqual(writes, [], "a finished bar has ended its line: it is left alone");
});

Deno.test("what the running tasks report follows the counts, and redraws a line whose counts stay", () => {
  const { progress, writes, at } = setup({ total: 4, isTty: true, columns: 80 });
  progress.update({ completed: 0, deadLettered: 0, detail: "running: #1 40%" });
  at(200);
  progress.update({ completed: 0, deadLettered: 0, detail: "running: #1 75%" });
  at(400);
  progress.finish();
  assert.deepEqual(writes, [
    `${CLEAR}[░░░░░░░░░░] 0/4 completed  0 dead-lettered  0.0/s  ETA ?  running: #1 40%`,
    `${CLEAR}[░░░░░░░░░░] 0/4 completed  0 dead-lettered  0.0/s  ETA ?  running: #1 75%`,
    `${CLEAR}[░░░░░░░░░░] 0/4 completed  0 dead-lettered  0.0/s  took 0.4s\n`,
  ]);
});

Deno.test("on a terminal, a line wider than the terminal is cut so that it never wraps", () => {
  const { progress, writes } = setup({ total: 4, isTty: true, columns: 60 });
  progress.update({ completed: 1, deadLettered: 0, detail: "running: #2 40%, #3 75%" });
  const line = writes[0]!.slice(CLEAR.length);
  assert.equal(line.length, 59);
  assert.ok(line.endsWith("…"), line);
});

Deno.test("without a terminal, the running tasks' progress ends the line", () => {
  const { progress, writes, at } = setup({ total: 2, isTty: false });
  at(2000);
  progress.update({ completed: 1, deadLettered: 0, detail: "running: #2 50%" });
  assert.deepEqual(writes, [
    "progress: 1/2 completed, 0 dead-lettered, 0.5 tasks/s, ETA 2s, running: #2 50%\n",
  ]);
});
