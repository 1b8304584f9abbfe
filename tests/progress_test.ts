/**
 * Progress against the real broker: `ctx.progress(value)` in a tight loop costs little, goes out
 * coalesced as a few `task.progress` events in order (and to `call`'s `onProgress`), and refuses
 * a value that is not a fraction or an object with a TypeError inside the handler.
 */
import assert from "node:assert/strict";
import { delay } from "../lib/core/async.ts";
import { eventsExchange, type TaskEvent } from "../lib/core/events.ts";
import type { Progress } from "../lib/core/results.ts";
import { createWorker, type WorkerLifecycleEvent } from "../lib/core/worker/mod.ts";
import type { TaskContext } from "../lib/core/handler.ts";
import { Scenario, within } from "../testing/scenario.ts";
import { options, trackedProducer } from "./_calls.ts";

const CALLS = 1_000_000;

/** What a handler measured of its progress reports. */
interface Measured {
  /** Milliseconds the million `ctx.progress` calls took. */
  loopMs: number;
  /** Milliseconds the same loop took calling an empty function instead. */
  baselineMs: number;
  /** Milliseconds from the handler's start to its return. */
  runMs: number;
}

/**
 * Calls `ctx.progress(i / n)` a million times in `chunks` tight loops, awaiting `pauseMs` between
 * them, then awaits `tailMs` (more than the coalescing interval, so that the last value goes
 * out) and returns what it measured.
 */
async function reportMillion(
  context: TaskContext,
  chunks: number,
  pauseMs: number,
  tailMs: number,
): Promise<Measured> {
  const begin = performance.now();
  const noop = (_: number) => {};
  let start = performance.now();
  for (let i = 1; i <= CALLS; i++) noop(i / CALLS);
  const baselineMs = performance.now() - start;
  let loopMs = 0;
  const size = CALLS / chunks;
  for (let chunk = 0; chunk < chunks; chunk++) {
    start = performance.now();
    for (let i = chunk * size + 1; i <= (chunk + 1) * size; i++) context.progress(i / CALLS);
    loopMs += performance.now() - start;
    if (chunk < chunks - 1) await delay(pauseMs);
  }
  await delay(tailMs);
  return { loopMs, baselineMs, runMs: performance.now() - begin };
}

/** Whether `values` never go down. */
function inOrder(values: number[]): boolean {
  return values.every((value, i) => i === 0 || value >= values[i - 1]!);
}

Deno.test({
  name: "a million ctx.progress calls cost little and go out as a few task.progress events in " +
    "order, ending near 1, also to call's onProgress",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const { url, queue } = scenario;
    // The events as they leave the worker, read raw from its events exchange.
    const remote: TaskEvent[] = [];
    const { queue: tap } = await scenario.channel.assertQueue("", { exclusive: true });
    await scenario.channel.bindQueue(tap, eventsExchange(queue), "task.progress");
    await scenario.channel.consume(tap, (message) => {
      if (message === null) return;
      const body = JSON.parse(message.content.toString());
      remote.push(...(Array.isArray(body) ? body : [body]));
    }, { noAck: true });
    const local: TaskEvent[] = [];
    await using worker = await createWorker<{ chunks: number }>({
      url,
      queue,
      name: "reporter",
      handler: (task, context) =>
        task.payload.chunks === 1
          ? reportMillion(context, 1, 0, 300) // one tight loop, then a little wait
          : reportMillion(context, task.payload.chunks, 50, 300),
    });
    // WorkerEventMap has no "task.progress" entry yet: the event is typed by hand.
    worker.addEventListener(
      "task.progress",
      (event) => local.push((event as WorkerLifecycleEvent<TaskEvent>).detail),
    );
    await using tracked = await trackedProducer(scenario);
    const { producer } = tracked;
    const of = (events: TaskEvent[], id: string) =>
      events.filter((e) => e.taskId === id).map((e) => e.progress as number);

    await scenario.step(t, "one tight loop of a million calls, then a short wait", async () => {
      const heard: Progress[] = [];
      const id = crypto.randomUUID();
      const measured = await within(
        producer.call<Measured>({ chunks: 1 }, { id, onProgress: (p) => heard.push(p) }),
        30_000,
        "the tight loop's task",
      );
      const values = of(local, id);
      console.log(
        `a million ctx.progress calls in one loop: ${measured.loopMs.toFixed(1)} ms (the same ` +
          `loop calling an empty function: ${measured.baselineMs.toFixed(1)} ms); ` +
          `${values.length} task.progress event(s) in ${Math.round(measured.runMs)} ms`,
      );
      // Nothing can go out while the loop holds the thread: the latest value, once, after it.
      assert.deepEqual(values, [1], "one event, with the last value");
      assert.deepEqual(heard, [1], "onProgress heard it");
    });

    await scenario.step(t, "the same million calls in 10 loops, 50 ms apart", async () => {
      const heard: Progress[] = [];
      const id = crypto.randomUUID();
      const measured = await within(
        producer.call<Measured>({ chunks: 10 }, { id, onProgress: (p) => heard.push(p) }),
        30_000,
        "the chunked loop's task",
      );
      const values = of(local, id);
      console.log(
        `a million ctx.progress calls in 10 loops: ${measured.loopMs.toFixed(1)} ms in all; ` +
          `${values.length} task.progress events in ${Math.round(measured.runMs)} ms: ` +
          values.map((v) => v.toFixed(2)).join(" "),
      );
      // Coalesced every 100 ms: at most one event per interval the handler ran (and one more
      // for a partial interval).
      const most = Math.ceil(measured.runMs / 100) + 1;
      assert.ok(values.length >= 2 && values.length <= most, `${values.length} events`);
      assert.ok(inOrder(values), `in order: ${values}`);
      assert.equal(values.at(-1), 1, "the last value seen is the last reported");
      assert.deepEqual(heard, values, "onProgress heard the same values, in order");
    });

    await scenario.step(t, "the events leave the worker with their progress", async () => {
      await scenario.waitForEvent(
        () => remote.length >= local.length,
        `${local.length} task.progress events on the exchange`,
        5_000,
      );
      assert.deepEqual(
        remote.map((e) => [e.type, e.taskId, e.progress]),
        local.map((e) => [e.type, e.taskId, e.progress]),
      );
    });
    scenario.pass();
  },
});

Deno.test({
  name: "ctx.progress throws a TypeError inside the handler for a value that is neither a " +
    "fraction nor an object; an object goes out as it is",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    const { url, queue } = scenario;
    const invalid: unknown[] = [2, "x", -0.1, Number.NaN, null, [0.5], undefined];
    await using _worker = await createWorker({
      url,
      queue,
      name: "reporter",
      handler: async (_task, context) => {
        const thrown = invalid.map((value) => {
          try {
            context.progress(value as number);
            return "no error";
          } catch (error) {
            return error instanceof TypeError ? `TypeError: ${error.message}` : String(error);
          }
        });
        context.progress({ stage: "upload", done: 3 });
        await delay(250);
        return thrown;
      },
    });
    await using tracked = await trackedProducer(scenario);
    const heard: Progress[] = [];
    const thrown = await within(
      tracked.producer.call<string[]>(null, { onProgress: (p) => heard.push(p) }),
      15_000,
      "the task's result",
    );
    const expected = "expected a number from 0 to 1 or an object";
    assert.deepEqual(thrown, [
      `TypeError: Invalid progress 2: ${expected}`,
      `TypeError: Invalid progress string: ${expected}`,
      `TypeError: Invalid progress -0.1: ${expected}`,
      `TypeError: Invalid progress NaN: ${expected}`,
      `TypeError: Invalid progress object: ${expected}`,
      `TypeError: Invalid progress object: ${expected}`,
      `TypeError: Invalid progress undefined: ${expected}`,
    ]);
    assert.deepEqual(heard, [{ stage: "upload", done: 3 }], "only the object went out");
    scenario.pass();
  },
});

Deno.test({
  name: "deno task work --handler: a worker process's progress reaches a subscriber of the " +
    "queue's events and the caller, each step once, in order",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    await scenario.startWorker("reporter", ["--handler", "tests/handlers/reports_progress.ts"]);
    await using tracked = await trackedProducer(scenario);
    // Each step held three coalescing intervals: each goes out, once.
    const steps = [0.25, { stage: "upload", done: 3 }, 0.75];
    const heard: Progress[] = [];
    const id = crypto.randomUUID();

    await scenario.step(t, "the caller hears each step, then the result", async () => {
      const result = await within(
        tracked.producer.call({ steps, holdMs: 300 }, { id, onProgress: (p) => heard.push(p) }),
        15_000,
        "the task's result",
      );
      assert.deepEqual(result, { steps: steps.length });
      assert.deepEqual(heard, steps);
    });

    await scenario.step(t, "a subscriber of the queue's events heard the same", async () => {
      const progress = () =>
        scenario.taskEvents(id).filter((e) => e.type === "task.progress").map((e) => e.progress);
      await scenario.waitForEvent(
        () => progress().length >= steps.length,
        `${steps.length} task.progress events`,
        5_000,
      );
      assert.deepEqual(progress(), steps);
      const events = scenario.taskEvents(id);
      assert.ok(events.every((e) => e.worker === "reporter"), "from the worker process");
    });
    scenario.pass();
  },
});
