import assert from "node:assert/strict";
import type { TareasEvent } from "../core/events.ts";
import { MAX_NAME_LENGTH, QueueMonitor } from "./monitor.ts";

const T0 = Date.parse("2026-01-01T00:00:00Z");

function event(fields: Record<string, unknown>): TareasEvent {
  return { at: new Date(T0).toISOString(), ...fields } as unknown as TareasEvent;
}

Deno.test("a worker is online while it reports, lost when it falls silent, offline when it says so", () => {
  const monitor = new QueueMonitor("q", { lostAfterMs: 3000, forgetAfterMs: 60_000 });
  monitor.observe(event({ type: "worker.online", worker: "a" }), T0);
  monitor.observe(event({ type: "worker.online", worker: "b" }), T0);
  monitor.observe(
    event({
      type: "worker.status",
      worker: "a",
      inHand: 2,
      completed: 5,
      failed: 1,
      lastMinute: 6,
    }),
    T0 + 1000,
  );
  monitor.observe(event({ type: "worker.offline", worker: "b" }), T0 + 1000);
  const early = monitor.snapshot(T0 + 2000);
  assert.deepEqual(early.workers.map((w) => [w.name, w.state]), [["a", "online"], [
    "b",
    "offline",
  ]]);
  assert.equal(early.unacked, 2);
  assert.equal(early.ratePerSecond, 0.1);
  const late = monitor.snapshot(T0 + 5000);
  assert.deepEqual(late.workers.map((w) => [w.name, w.state]), [["a", "lost"], ["b", "offline"]]);
  assert.equal(late.workers[0]!.lastSeen, new Date(T0 + 1000).toISOString());
  assert.equal(late.unacked, 0, "a lost worker's tasks are not counted in hand");
  assert.equal(monitor.snapshot(T0 + 70_000).workers.length, 0, "forgotten after a while");
});

Deno.test("task events move a worker's counts between its status reports", () => {
  const monitor = new QueueMonitor("q");
  monitor.observe(event({ type: "worker.status", worker: "a", completed: 1, failed: 0 }), T0);
  monitor.observe(event({ type: "task.completed", worker: "a", taskId: "t" }), T0);
  monitor.observe(event({ type: "task.failed", worker: "a", taskId: "u" }), T0);
  assert.deepEqual(
    { ...monitor.snapshot(T0).workers[0], lastSeen: "" },
    { name: "a", state: "online", lastSeen: "", inHand: 0, completed: 2, failed: 1, running: [] },
  );
});

Deno.test("junk in event fields never becomes junk in a snapshot", () => {
  const monitor = new QueueMonitor("q");
  monitor.setCounts({ ready: -1, consumers: 1.5, dead: NaN });
  monitor.observe(
    event({
      type: "worker.status",
      worker: "junk",
      inHand: "lots",
      completed: { n: 1 },
      failed: -3,
      lastMinute: "x",
      node: ["rabbit@a"],
    }),
    T0,
  );
  monitor.observe(event({ type: "worker.status", worker: "huge", inHand: 1e300 }), T0);
  monitor.observe(event({ type: "worker.status", worker: "", inHand: 1 }), T0);
  monitor.observe(
    event({ type: "worker.status", worker: "n".repeat(10_000), node: "rabbit@b" }),
    T0,
  );
  const snapshot = monitor.snapshot(T0);
  const json = JSON.stringify(snapshot);
  assert.doesNotMatch(json, /lots|object Object|null|NaN|Infinity|e\+/);
  assert.equal(snapshot.ready + snapshot.consumers + snapshot.dead, 0);
  assert.equal(typeof snapshot.ratePerSecond, "number");
  assert.equal(snapshot.workers.length, 3, "a worker without a name is ignored");
  const long = snapshot.workers.find((w) => w.name.startsWith("nnn"))!;
  assert.equal(long.name.length, MAX_NAME_LENGTH);
  assert.equal(long.node, "rabbit@b");
  assert.equal(snapshot.workers.find((w) => w.name === "junk")!.node, undefined);
});

Deno.test("200k fake worker names: the oldest are dropped beyond the cap, and counted", () => {
  const monitor = new QueueMonitor("q", { maxWorkers: 1000 });
  monitor.observe(event({ type: "worker.status", worker: "real", completed: 7 }), T0);
  for (let i = 0; i < 200_000; i++) {
    monitor.observe(event({ type: "worker.status", worker: `fake-${i}` }), T0 + 1);
    if (i % 500 === 0) monitor.observe(event({ type: "worker.status", worker: "real" }), T0 + 1);
  }
  const snapshot = monitor.snapshot(T0 + 1);
  assert.equal(snapshot.workers.length, 1000);
  assert.equal(snapshot.workersDropped, 200_001 - 1000);
  assert.ok(snapshot.workers.some((w) => w.name === "real"), "a worker that keeps reporting stays");
  assert.ok(snapshot.workers.some((w) => w.name === "fake-199999"));
});

Deno.test("each online worker shows the tasks it runs with their latest progress", () => {
  const monitor = new QueueMonitor("q", { lostAfterMs: 3000 });
  const task = (type: string, fields: Record<string, unknown>) =>
    event({ type, seq: 0, attempt: 1, redelivered: false, ...fields });
  monitor.observe(event({ type: "worker.online", worker: "a" }), T0);
  monitor.observe(task("task.started", { worker: "a", taskId: "t1", seq: 3 }), T0);
  monitor.observe(task("task.progress", { worker: "a", taskId: "t1", seq: 3, progress: 0.4 }), T0);
  monitor.observe(task("task.progress", { worker: "a", taskId: "t2", seq: 4, progress: {} }), T0);
  const running = monitor.snapshot(T0 + 100).workers[0]!.running;
  assert.deepEqual(running.map((t) => [t.seq, t.progress]), [[3, 0.4], [4, {}]]);

  monitor.observe(task("task.completed", { worker: "a", taskId: "t1", seq: 3 }), T0 + 200);
  assert.deepEqual(monitor.snapshot(T0 + 200).workers[0]!.running.map((t) => t.seq), [4]);
  assert.deepEqual(
    monitor.snapshot(T0 + 5000).workers[0]!.running,
    [],
    "a lost worker runs nothing: its tasks go back to the queue",
  );
  // A worker.status saying it holds nothing ends what it ran before, even unheard.
  monitor.observe(
    event({ type: "worker.status", worker: "a", inHand: 0, at: new Date(T0 + 300).toISOString() }),
    T0 + 5100,
  );
  assert.deepEqual(monitor.snapshot(T0 + 5100).workers[0]!.running, []);
});
