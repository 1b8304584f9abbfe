import assert from "node:assert/strict";
import type { TaskEvent } from "../core/events.ts";
import { UsageError } from "../core/errors.ts";
import { type Worker, WorkerLifecycleEvent } from "../core/worker/types.ts";
import { QueueMonitor } from "../observe/monitor.ts";
import {
  combineObservers,
  PROMETHEUS_CONTENT_TYPE,
  queueMetricsResponse,
  renderQueueMetrics,
  serveMetrics,
  workerMetrics,
} from "./metrics.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

/** A GET of `path` on 127.0.0.1:`port` with the Host header `host` (which fetch sets itself). */
async function rawGet(port: number, path: string, host: string): Promise<string> {
  using connection = await Deno.connect({ hostname: "127.0.0.1", port });
  const request = `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
  await connection.write(new TextEncoder().encode(request));
  const buffer = new Uint8Array(65_536);
  const read = await connection.read(buffer);
  return new TextDecoder().decode(buffer.subarray(0, read ?? 0));
}

/** A worker's public face without a broker: its figures are fields, its events dispatched here. */
class FakeWorker extends EventTarget {
  readonly name = "w1";
  readonly queue: string;
  inHand = 0;
  prefetch = 4;
  concurrency = 2;
  ready = true;
  reconnects = 0;
  readonly closed = Promise.resolve();

  constructor(queue = "q") {
    super();
    this.queue = queue;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return Promise.resolve();
  }

  /** Dispatches a task event as the worker does. */
  emit(type: TaskEvent["type"], fields: Partial<TaskEvent> = {}): void {
    this.dispatchEvent(
      new WorkerLifecycleEvent<TaskEvent>({
        type,
        worker: this.name,
        at: new Date().toISOString(),
        taskId: crypto.randomUUID(),
        seq: 0,
        attempt: 1,
        redelivered: false,
        ...fields,
      }),
    );
  }

  get worker(): Worker {
    return this as unknown as Worker;
  }
}

/** One sample of the exposition text. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Reads the samples of a Prometheus text exposition (comments skipped, label values unescaped). */
function samples(text: string): Sample[] {
  return text.split("\n").filter((line) => line !== "" && !line.startsWith("#")).map((line) => {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key!] = value!.replace(/\\(.)/g, (_, c) => c === "n" ? "\n" : c);
    }
    return { name: match[1]!, labels, value: Number(match[3]) };
  });
}

/** The value of the one sample named `name` whose labels include `labels`. */
function value(text: string, name: string, labels: Record<string, string> = {}): number {
  const found = samples(text).filter((sample) =>
    sample.name === name && Object.entries(labels).every(([k, v]) => sample.labels[k] === v)
  );
  assert.equal(found.length, 1, `one ${name} ${JSON.stringify(labels)} in:\n${text}`);
  return found[0]!.value;
}

/** How many series of `name` there are. */
function series(text: string, name: string): number {
  return samples(text).filter((sample) => sample.name === name).length;
}

Deno.test({
  name: "task events are counted by queue and task name, and every run is in the histogram",
  ...options,
  async fn() {
    const metrics = workerMetrics();
    const worker = new FakeWorker("images");
    metrics.attach(worker.worker);
    for (const durationMs of [3, 40, 1200]) {
      worker.emit("task.completed", { name: "resize", durationMs });
    }
    worker.emit("task.failed", { name: "email", durationMs: 7 }); // retried
    worker.emit("task.failed", { name: "email", durationMs: 8 }); // retried
    worker.emit("task.dead", { name: "email", durationMs: 9, reason: "boom (after 3 attempts)" });
    worker.emit("task.dead", { reason: "not a task" }); // no name, no run
    const text = await metrics.render();
    const resize = { queue: "images", name: "resize" };
    const email = { queue: "images", name: "email" };
    assert.equal(value(text, "tareas_tasks_completed_total", resize), 3);
    assert.equal(value(text, "tareas_tasks_failed_total", email), 3, "two retried, one died");
    assert.equal(value(text, "tareas_tasks_retried_total", email), 2);
    assert.equal(value(text, "tareas_tasks_dead_lettered_total", email), 1);
    assert.equal(
      value(text, "tareas_tasks_dead_lettered_total", { queue: "images", name: "(other)" }),
      1,
    );
    assert.equal(value(text, "tareas_task_duration_seconds_count", resize), 3);
    assert.equal(value(text, "tareas_task_duration_seconds_count", email), 3);
    const sum = value(text, "tareas_task_duration_seconds_sum", resize);
    assert.ok(Math.abs(sum - 1.243) < 1e-9, `sum ${sum}, not 1.243 s`);
    assert.equal(value(text, "tareas_task_duration_seconds_bucket", { ...resize, le: "0.005" }), 1);
    assert.equal(value(text, "tareas_task_duration_seconds_bucket", { ...resize, le: "0.05" }), 2);
    assert.equal(value(text, "tareas_task_duration_seconds_bucket", { ...resize, le: "+Inf" }), 3);
    assert.match(text, /^# TYPE tareas_task_duration_seconds histogram$/m);
    assert.match(text, /^# TYPE tareas_tasks_completed_total counter$/m);
  },
});

Deno.test({
  name: "a name gets a label value of its own only once a task of it ran: a hostile " +
    "publisher's 1000 names without a handler are one series",
  ...options,
  async fn() {
    const metrics = workerMetrics();
    const worker = new FakeWorker();
    metrics.attach(worker.worker);
    // Tried: 1000 distinct names the worker has no handler for, dead-lettered without a run.
    for (let i = 0; i < 1000; i++) {
      worker.emit("task.dead", { name: `evil-${i}`, reason: `no handler for task "evil-${i}"` });
    }
    // A name the worker has a handler for: once it ran, its deaths without a run have its name.
    worker.emit("task.completed", { name: "resize", durationMs: 1 });
    worker.emit("task.dead", { name: "resize", reason: "Delivered 6 times without an ack" });
    const text = await metrics.render();
    assert.equal(series(text, "tareas_tasks_dead_lettered_total"), 2, text);
    assert.equal(value(text, "tareas_tasks_dead_lettered_total", { name: "(other)" }), 1000);
    assert.equal(value(text, "tareas_tasks_dead_lettered_total", { name: "resize" }), 1);
  },
});

Deno.test({
  name: "the task names kept are capped: beyond maxTaskNames a name that runs is (other)",
  ...options,
  async fn() {
    const metrics = workerMetrics({ maxTaskNames: 2 });
    const worker = new FakeWorker();
    metrics.attach(worker.worker);
    for (const name of ["a", "b", "c", "d", "a"]) {
      worker.emit("task.completed", { name, durationMs: 1 });
    }
    const text = await metrics.render();
    assert.equal(series(text, "tareas_tasks_completed_total"), 3, text);
    assert.equal(value(text, "tareas_tasks_completed_total", { name: "a" }), 2);
    assert.equal(value(text, "tareas_tasks_completed_total", { name: "b" }), 1);
    assert.equal(value(text, "tareas_tasks_completed_total", { name: "(other)" }), 2);
  },
});

Deno.test({
  name: "label values are escaped as the exposition format wants",
  ...options,
  async fn() {
    const metrics = workerMetrics();
    const worker = new FakeWorker('odd"queue');
    metrics.attach(worker.worker);
    const name = 'a"b\\c\nd';
    worker.emit("task.completed", { name, durationMs: 1 });
    const text = await metrics.render();
    assert.ok(text.includes(String.raw`name="a\"b\\c\nd"`), text);
    assert.equal(value(text, "tareas_tasks_completed_total", { queue: 'odd"queue', name }), 1);
  },
});

Deno.test({
  name: "the worker's figures are read at each scrape; reconnects never go back once it detaches",
  ...options,
  async fn() {
    const metrics = workerMetrics();
    const worker = new FakeWorker();
    const detach = metrics.attach(worker.worker);
    worker.inHand = 3;
    worker.reconnects = 2;
    let text = await metrics.render();
    assert.equal(value(text, "tareas_worker_tasks_in_hand", { queue: "q" }), 3);
    assert.equal(value(text, "tareas_worker_prefetch", { queue: "q" }), 4);
    assert.equal(value(text, "tareas_worker_concurrency", { queue: "q" }), 2);
    assert.equal(value(text, "tareas_worker_ready", { queue: "q" }), 1);
    assert.equal(value(text, "tareas_worker_reconnects_total", { queue: "q" }), 2);
    worker.ready = false;
    worker.inHand = 0;
    text = await metrics.render();
    assert.equal(value(text, "tareas_worker_ready", { queue: "q" }), 0);
    assert.equal(value(text, "tareas_worker_tasks_in_hand", { queue: "q" }), 0);
    detach();
    detach(); // idempotent
    worker.emit("task.completed", { name: "a", durationMs: 1 });
    text = await metrics.render();
    assert.equal(series(text, "tareas_tasks_completed_total"), 0, "detached: not counted");
    assert.equal(series(text, "tareas_worker_ready"), 0, "no worker, no gauges");
    assert.equal(value(text, "tareas_worker_reconnects_total", { queue: "q" }), 2);
    // Another worker of the same queue in the same process: its reconnects add up.
    const next = new FakeWorker();
    next.reconnects = 1;
    metrics.attach(next.worker);
    text = await metrics.render();
    assert.equal(value(text, "tareas_worker_reconnects_total", { queue: "q" }), 3);
    assert.equal(value(text, "tareas_worker_ready", { queue: "q" }), 1);
  },
});

Deno.test({
  name:
    "an observer does not keep the worker dispatching task.started, which would cost every task",
  ...options,
  fn() {
    const worker = new FakeWorker();
    const types: string[] = [];
    const target = worker.worker;
    const add = target.addEventListener.bind(target);
    target.addEventListener = ((type: string, ...rest: [EventListener]) => {
      types.push(type);
      add(type, ...rest);
    }) as typeof target.addEventListener;
    workerMetrics().attach(target);
    assert.deepEqual(types.sort(), ["task.completed", "task.dead", "task.failed"]);
  },
});

Deno.test({
  name: "combineObservers attaches and detaches each observer, skipping the undefined ones",
  ...options,
  fn() {
    const calls: string[] = [];
    const observer = (name: string) => ({
      attach: () => {
        calls.push(`attach ${name}`);
        return () => calls.push(`detach ${name}`);
      },
    });
    const failing = {
      attach: () => () => {
        throw new Error("boom");
      },
    };
    const detach = combineObservers(observer("a"), undefined, failing, observer("b"))
      .attach(new FakeWorker().worker);
    detach();
    assert.deepEqual(calls, ["attach a", "attach b", "detach a", "detach b"]);
  },
});

Deno.test({
  name: "serveMetrics serves /metrics on 127.0.0.1, answers 404 and 405 otherwise, and closes once",
  ...options,
  async fn() {
    await using metrics = serveMetrics({ port: 0 });
    assert.match(metrics.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const worker = new FakeWorker();
    metrics.attach(worker.worker);
    worker.emit("task.completed", { name: "a", durationMs: 5 });
    const response = await fetch(metrics.url);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), PROMETHEUS_CONTENT_TYPE);
    assert.equal(value(await response.text(), "tareas_tasks_completed_total", { name: "a" }), 1);
    const base = metrics.url.replace(/\/metrics$/, "");
    const missing = await fetch(`${base}/`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
    const post = await fetch(metrics.url, { method: "POST" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    await post.body?.cancel();
    // A page of another site whose name was rebound to 127.0.0.1 sends its own Host header.
    const port = Number(new URL(metrics.url).port);
    assert.match(await rawGet(port, "/metrics", "evil.example"), /^HTTP\/1\.1 421 /);
    assert.match(await rawGet(port, "/metrics", `localhost:${port}`), /^HTTP\/1\.1 200 /);
    await Promise.all([metrics.close(), metrics.close()]);
    await assert.rejects(fetch(metrics.url), TypeError, "closed: nothing listens");
  },
});

Deno.test({
  name: "serveMetrics on a port in use is a usage error naming the address",
  ...options,
  async fn() {
    await using first = serveMetrics({ port: 0 });
    const port = Number(new URL(first.url).port);
    assert.throws(
      () => serveMetrics({ port }),
      (error: unknown) =>
        error instanceof UsageError &&
        error.message.startsWith(`Cannot listen on 127.0.0.1:${port} for metrics: `) &&
        !error.message.includes("\n"),
    );
    assert.throws(() => serveMetrics({ port: 70_000 }), /^UsageError: Invalid port 70000/);
  },
});

Deno.test({
  name: "serveMetrics stops when its signal aborts",
  ...options,
  async fn() {
    const controller = new AbortController();
    const metrics = serveMetrics({ port: 0, signal: controller.signal });
    controller.abort();
    await metrics.close(); // the same closing, awaited
    await assert.rejects(fetch(metrics.url), TypeError);
  },
});

Deno.test({
  name: "renderQueueMetrics writes a snapshot's figures and each worker's liveness, capped",
  ...options,
  async fn() {
    // The dashboard's path: events and counts into its monitor, a snapshot out.
    const monitor = new QueueMonitor("images", { lostAfterMs: 3_000 });
    const t0 = Date.parse("2026-01-01T00:00:00.000Z");
    const event = (type: "worker.online" | "worker.offline", worker: string, at: number) =>
      monitor.observe({ type, worker, at: new Date(at).toISOString(), inHand: 0 }, at);
    event("worker.online", "w3", t0);
    event("worker.offline", "w3", t0);
    event("worker.online", "w2\u001b[2J", t0 + 1_500); // lost by t0 + 10 s
    event("worker.online", "w1", t0 + 9_000);
    monitor.setCounts({ ready: 12, consumers: 2, dead: 1 });
    const snapshot = monitor.snapshot(t0 + 10_000);
    const text = await renderQueueMetrics(snapshot, { maxWorkers: 2 });
    const queue = { queue: "images" };
    assert.equal(value(text, "tareas_queue_ready_messages", queue), 12);
    assert.equal(value(text, "tareas_queue_unacked_messages", queue), snapshot.unacked);
    assert.equal(value(text, "tareas_queue_consumers", queue), 2);
    assert.equal(value(text, "tareas_queue_dead_lettered_messages", queue), 1);
    for (const state of ["online", "lost", "offline"]) {
      assert.equal(value(text, "tareas_queue_workers", { ...queue, state }), 1, state);
    }
    assert.equal(value(text, "tareas_queue_worker_up", { worker: "w1" }), 1);
    // A name from an event is shown escaped: no raw control character reaches the scraper.
    assert.equal(value(text, "tareas_queue_worker_up", { worker: "w2\\x1b[2J" }), 0);
    assert.equal(
      value(text, "tareas_queue_worker_last_seen_timestamp_seconds", { worker: "w2\\x1b[2J" }),
      Date.parse("2026-01-01T00:00:01.500Z") / 1000,
    );
    assert.equal(series(text, "tareas_queue_worker_up"), 2, "maxWorkers: 2");
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(text, /\u001b/);
    const response = await queueMetricsResponse(snapshot, { maxWorkers: 2 });
    assert.equal(response.headers.get("content-type"), PROMETHEUS_CONTENT_TYPE);
    assert.equal(await response.text(), text);
  },
});
