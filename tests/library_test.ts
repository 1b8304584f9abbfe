/**
 * tareas as a library: a program imports mod.ts, enqueues tasks with payloads and runs workers in
 * the same process, observing them through their lifecycle events.
 */
import assert from "node:assert/strict";
import {
  createProducer,
  createWorker,
  sleepHandler,
  TareasError,
  type Task,
  type TaskEvent,
  TaskFormatError,
  UsageError,
  type Worker,
  WorkerLifecycleEvent,
} from "../mod.ts";
import { Scenario, within } from "../testing/scenario.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

interface Order {
  n: number;
  customer: string;
  lines: { sku: string; quantity: number }[];
}

Deno.test({
  name: "100 tasks with distinct payloads are each handled exactly once, intact, by two " +
    "in-process workers",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    const { url, queue } = scenario;
    const seen: { worker: string; task: Task<Order> }[] = [];
    const all = Promise.withResolvers<void>();
    const workers: Worker[] = [];
    for (const name of ["embedded-a", "embedded-b"]) {
      workers.push(
        await createWorker<Order>({
          url,
          queue,
          name,
          handler: (task) => {
            seen.push({ worker: name, task });
            if (seen.length === 100) all.resolve();
          },
        }),
      );
    }
    const completed: TaskEvent[] = [];
    for (const worker of workers) {
      worker.addEventListener("task.completed", (event) => {
        assert.ok(event instanceof WorkerLifecycleEvent);
        completed.push(event.detail);
      });
    }
    const payloads: Order[] = Array.from({ length: 100 }, (_, n) => ({
      n,
      customer: `cliente ${n} — ñandú "quoted" <b>`,
      lines: [{ sku: `sku-${n}`, quantity: n % 7 }],
    }));
    await using producer = await createProducer({ url, queue });
    const tasks = await producer.enqueueMany(payloads);
    assert.equal(new Set(tasks.map((task) => task.id)).size, 100, "100 distinct ids");

    await within(all.promise, 30_000, "the handlers to see 100 tasks");
    for (const worker of workers) await worker.close();
    const byN = new Map(seen.map(({ task }) => [task.payload.n, task]));
    assert.equal(seen.length, 100, "no task was handled twice");
    assert.equal(byN.size, 100, "every payload was handled");
    for (const task of tasks) {
      assert.deepEqual(byN.get(task.payload.n), task, `task ${task.payload.n} arrived intact`);
    }
    assert.equal(completed.length, 100, "a task.completed lifecycle event per task");
    assert.equal(await scenario.ready(), 0, "nothing left in the queue");
    scenario.pass();
  },
});

Deno.test({
  name: "closing a worker while its handler runs lets the task finish and be acked, and it is " +
    "not redelivered",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    const { url, queue } = scenario;
    const started = Promise.withResolvers<void>();
    const release = Promise.withResolvers<void>();
    const worker = await createWorker({
      url,
      queue,
      name: "closing",
      handler: async () => {
        started.resolve();
        await release.promise;
      },
    });
    const offline = new Promise<void>((resolve) =>
      worker.addEventListener("worker.offline", () => resolve())
    );
    await using producer = await createProducer({ url, queue });
    const task = await producer.enqueue({ hello: "world" });
    await within(started.promise, 10_000, "the handler to start");

    const closing = worker.close();
    assert.equal(worker.close(), closing, "close() is idempotent");
    assert.equal(worker.inHand, 1, "the task is still in hand while closing");
    release.resolve();
    await within(closing, 10_000, "the worker to close");
    await within(offline, 1_000, "worker.offline");
    await within(worker.closed, 1_000, "worker.closed");

    const done = scenario.completions();
    assert.equal(done.length, 1, "completed once");
    assert.equal(done[0]!.taskId, task.id);
    assert.equal(await scenario.ready(), 0, "acked: nothing went back to the queue");
    // A second worker finds nothing to redeliver.
    const next = await createWorker({ url, queue, name: "next", handler: sleepHandler });
    await next.close();
    assert.equal(scenario.events.filter((e) => "taskId" in e && e.worker === "next").length, 0);
    scenario.pass();
  },
});

Deno.test({
  name: "a worker created with an aborted signal, or closed by its signal, stops gracefully",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    const controller = new AbortController();
    const worker = await createWorker({
      url: scenario.url,
      queue: scenario.queue,
      name: "signalled",
      handler: sleepHandler,
      signal: controller.signal,
    });
    controller.abort();
    await within(worker.closed, 10_000, "the worker to close on abort");
    await scenario.waitForEvent((e) => e.type === "worker.offline", "worker.offline");
    scenario.pass();
  },
});

Deno.test({
  name: "bad options and payloads are refused with one-line errors before anything is published",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    const { url, queue } = scenario;
    const handler = sleepHandler;
    await assert.rejects(
      createWorker({ url, queue, handler, concurrency: 0 }),
      /^UsageError: Invalid concurrency 0: expected a whole number from 1/,
    );
    await assert.rejects(
      createWorker({ url, queue, handler, prefetch: 1, concurrency: 2 }),
      /prefetch 1/,
    );
    // Tried: a worker given no handler, which once ran the demo's sleep and acked real tasks.
    await assert.rejects(
      createWorker({ url, queue } as Parameters<typeof createWorker>[0]),
      (error: unknown) => {
        assert.ok(error instanceof UsageError);
        assert.match(error.message, /^Invalid handler: createWorker needs the function/);
        return true;
      },
    );
    assert.equal(await scenario.queueExists(queue), false, "nothing was declared or consumed");
    await using producer = await createProducer({ url, queue });
    await assert.rejects(producer.enqueue(10n), (error: unknown) => {
      assert.ok(error instanceof TaskFormatError, String(error));
      assert.ok(error instanceof TareasError, "an expected failure, shown in one line");
      assert.match(error.message, /^Payload is not JSON/);
      return true;
    });
    await assert.rejects(producer.enqueue(null, { id: "" }), /Invalid task: "id"/);
    assert.equal(await scenario.ready(), 0, "nothing was published");
    // Tried: a BigInt among four payloads of a bulk enqueue.
    await assert.rejects(producer.enqueueMany([1, 2, 3n, 4]), /Payload is not JSON/);
    assert.equal(await scenario.ready(), 3, "the three good payloads were published, confirmed");
    scenario.pass();
  },
});

Deno.test({
  name: "100 tasks failing at once with long reasons: every task.dead reaches event readers " +
    "(a batch larger than readers accept is split)",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    const { url, queue } = scenario;
    // Tried: 100 deaths in one moment, each with a 2,000-character reason of 2-byte characters,
    // about 400 KB of events of one type; readers ignore a message over 64 KiB unread.
    await using worker = await createWorker({
      url,
      queue,
      concurrency: 100,
      maxAttempts: 1,
      handler: () => {
        throw new Error("é".repeat(3_000));
      },
    });
    await using producer = await createProducer({ url, queue });
    await producer.enqueueMany(Array.from({ length: 100 }, (_, n) => n));
    await scenario.waitForEvent(
      () => scenario.events.filter((e) => e.type === "task.dead").length >= 100,
      "100 task.dead events",
      30_000,
    );
    const dead = scenario.events.filter((e): e is TaskEvent => e.type === "task.dead");
    assert.equal(new Set(dead.map((e) => e.taskId)).size, 100, "one per task");
    await worker.close();
    scenario.pass();
  },
});

Deno.test({
  name: "a listener that binds while a worker runs, after its completions had nobody to go to, " +
    "hears every completion from then on",
  ...options,
  async fn() {
    // Tried: 300 no-op tasks through a worker whose task.completed events came back unrouted
    // (nobody was bound to them), then a listener binding between two batches, then 300 more.
    await using scenario = await Scenario.open(undefined, { listen: "worker.*" });
    const { url, queue } = scenario;
    let handled = 0;
    let target = 300;
    let enough = Promise.withResolvers<void>();
    await using worker = await createWorker({
      url,
      queue,
      handler: () => {
        if (++handled === target) enough.resolve();
      },
    });
    await using producer = await createProducer({ url, queue });
    await producer.enqueueMany(Array.from({ length: 300 }, (_, n) => n));
    await within(enough.promise, 30_000, "300 tasks handled with no listener");
    assert.equal(scenario.completions().length, 0, "the subscription to worker.* got none");

    await scenario.listen("task.completed");
    target = 600;
    enough = Promise.withResolvers();
    const heard = await producer.enqueueMany(Array.from({ length: 300 }, (_, n) => n));
    await within(enough.promise, 30_000, "300 more tasks handled");
    const completed = () => new Set(scenario.completions().map((e) => e.taskId));
    // The last completions of the first batch may still be in their window: heard too.
    await scenario.waitForEvent(
      () => heard.every((task) => completed().has(task.id)),
      "a completion for each of the 300 tasks published after the binding",
      10_000,
    );
    assert.ok(completed().size < 600, "the completions from before the binding were not heard");
    await worker.close();
    scenario.pass();
  },
});
