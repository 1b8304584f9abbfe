/**
 * The short-task setting (`--prefetch 200 --concurrency 200`, acks that cover runs of finished
 * deliveries) weakens nothing: a SIGKILLed worker's unacked tasks come back and complete, at most
 * its prefetch of them, and no task is acked before it finished. And its acks do cover runs: far
 * fewer acks than tasks.
 */
import assert from "node:assert/strict";
import type { TaskEvent } from "../lib/core/events.ts";
import { createProducer, createWorker } from "../mod.ts";
import {
  clientFrames,
  isMethod,
  type ProxyOptions,
  proxyTarget,
  startProxy,
  throughProxy,
} from "../testing/proxy.ts";
import { Scenario, within } from "../testing/scenario.ts";

Deno.test({
  name: "prefetch 200, concurrency 200: a worker SIGKILLed mid-run sends back at most 200 " +
    "tasks, and all 3,000 complete",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using scenario = await Scenario.open();
    // 20-100 ms tasks, so that the kill finds up to 200 in hand, finished ones among unfinished.
    const args = ["--prefetch", "200", "--concurrency", "200", "--time-scale", "0.02"];
    const a = await scenario.startWorker("a", args);
    await scenario.startWorker("b", args);
    await scenario.produce(["--count", "3000", "--min", "1", "--max", "5"]);
    const byA = () => scenario.completions().filter((e) => e.worker === "a").length;
    await scenario.waitForEvent(() => byA() >= 500, "500 completions by a", 60_000);
    a.kill("SIGKILL");
    await a.exit();
    const beforeKill = scenario.completions().length;

    await scenario.waitForCompleted(3000, 60_000);
    const completions = scenario.completions();
    assert.equal(new Set(completions.map((e) => e.taskId)).size, 3000, "every task completed");
    const sentBack = new Set(
      completions.filter((e: TaskEvent) => e.redelivered).map((e) => e.taskId),
    );
    assert.ok(sentBack.size > 0, "the kill found tasks in hand, and they came back");
    assert.ok(sentBack.size <= 200, `${sentBack.size} tasks came back: at most the prefetch`);
    assert.ok(completions.length - 3000 <= 200, "duplicates only among the tasks sent back");
    const seen = new Set<string>();
    for (const { taskId } of completions) {
      if (seen.has(taskId)) assert.ok(sentBack.has(taskId), `${taskId} ran twice: it came back`);
      seen.add(taskId);
    }
    const byB = completions.slice(0, beforeKill).filter((e) => e.worker === "b").length;
    assert.ok(byB > 0, "both workers took tasks before the kill");
    console.log(
      `${sentBack.size} task(s) came back after the kill, ${completions.length - 3000} ran ` +
        `twice; before it, a completed ${byA()} and b ${byB}`,
    );
    scenario.pass();
  },
});

/** Counts the basic.ack frames a client sends. */
function ackCounter(): { count: () => number; tap: NonNullable<ProxyOptions["tap"]> } {
  let count = 0;
  return {
    count: () => count,
    tap: clientFrames((frame) => {
      if (isMethod(frame, 60, 80)) count++;
    }),
  };
}

/** A worker set for short tasks (prefetch and concurrency 200), reaching the broker via `port`. */
function shortTaskWorker(url: string, queue: string, port: number, handler: () => void) {
  return createWorker({
    url: throughProxy(url, port),
    queue,
    prefetch: 200,
    concurrency: 200,
    handler,
  });
}

Deno.test({
  name: "prefetch 200, concurrency 200: 1,000 queued tasks of a synchronous handler are acked " +
    "with far fewer acks than tasks, and none is left unacked",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    // What is tried: a filled queue, so that each socket read brings many deliveries, all of which
    // end within the turn; the worker must cover them with one ack rather than one each.
    await using scenario = await Scenario.open();
    const { url, queue } = scenario;
    await using producer = await createProducer({ url, queue });
    await producer.enqueueMany(new Array(1000).fill(null));
    const acks = ackCounter();
    await using proxy = startProxy(proxyTarget(url), { tap: acks.tap });
    const all = Promise.withResolvers<void>();
    let handled = 0;
    await using worker = await shortTaskWorker(url, queue, proxy.port, () => {
      if (++handled === 1000) all.resolve();
    });
    await within(all.promise, 30_000, "the handler to see 1,000 tasks");
    await worker.close(); // Its last acks go out before the connection closes.
    assert.equal(handled, 1000, "each task handled once");
    assert.equal(await scenario.ready(), 0, "every task acked: none returned to the queue");
    assert.ok(acks.count() > 0, "the counter sees acks");
    assert.ok(acks.count() <= 100, `${acks.count()} acks for 1,000 tasks: at most one per 10`);
    console.log(`1,000 tasks acked with ${acks.count()} ack(s)`);
    scenario.pass();
  },
});

/** What a client published, by routing key: message bodies, their bytes, and the empty ones. */
function publishTally() {
  const byKey = new Map<string, { bodies: number; bytes: number; empty: number }>();
  const keyOf = new Map<number, string>(); // The routing key of each channel's publish in progress.
  let waiters: { test: () => boolean; resolve: () => void }[] = [];
  const decoder = new TextDecoder();
  const of = (key: string) => ({ ...(byKey.get(key) ?? { bodies: 0, bytes: 0, empty: 0 }) });
  return {
    of,
    /** Resolves once `test` holds, checked now and after each body published. */
    until(test: () => boolean): Promise<void> {
      if (test()) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ test, resolve }));
    },
    tap: clientFrames((frame) => {
      const { payload } = frame;
      if (isMethod(frame, 60, 40)) { // basic.publish: reserved short, exchange, routing key.
        const exchangeEnd = 7 + payload[6]!;
        const keyEnd = exchangeEnd + 1 + payload[exchangeEnd]!;
        keyOf.set(frame.channel, decoder.decode(payload.subarray(exchangeEnd + 1, keyEnd)));
      } else if (frame.type === 3) {
        const key = keyOf.get(frame.channel) ?? "";
        const tally = byKey.get(key) ?? { bodies: 0, bytes: 0, empty: 0 };
        byKey.set(key, tally);
        tally.bodies++;
        tally.bytes += payload.length;
        if (decoder.decode(payload) === "[]") tally.empty++;
        waiters = waiters.filter(({ test, resolve }) => test() ? (resolve(), false) : true);
      }
    }),
  };
}

Deno.test({
  name: "events nobody listens to are not sent: an empty probe per batch asks whether someone " +
    "listens now, and once someone does, the events it held follow",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    // What is tried: 1,000 no-op tasks through a worker that has learnt that nobody is bound to
    // task.completed (its events came back unrouted). Counted: the bytes of the task.completed
    // messages it publishes, through the test proxy. Then a listener binds and 300 more tasks
    // run: their first events wait on a probe, which is now routed, so they must follow it.
    await using scenario = await Scenario.open(undefined, { listen: "worker.*" });
    const { url, queue } = scenario;
    const tally = publishTally();
    await using proxy = startProxy(proxyTarget(url), { tap: tally.tap });
    let handled = 0;
    let target = 0;
    let enough = Promise.withResolvers<void>();
    await using worker = await shortTaskWorker(url, queue, proxy.port, () => {
      if (++handled === target) enough.resolve();
    });
    await using producer = await createProducer({ url, queue });
    const run = async (count: number, what: string) => {
      target += count;
      enough = Promise.withResolvers();
      const tasks = await producer.enqueueMany(new Array(count).fill(null));
      await within(enough.promise, 30_000, what);
      return tasks;
    };
    const completed = () => tally.of("task.completed");
    // Until the worker learns: one task at a time, each until a task.completed message goes out.
    for (let n = 1; completed().empty === 0; n++) {
      assert.ok(n <= 10, "a probe instead of the events, by the 10th task nobody listens to");
      const sent = completed().bodies;
      await run(1, `task ${n}`);
      await within(tally.until(() => completed().bodies > sent), 5_000, `task ${n}'s message`);
    }
    const before = completed();
    await run(1000, "1,000 tasks handled");
    // Each probe stands for at most 100 events, as a message of events does.
    await within(
      tally.until(() => completed().empty - before.empty >= 10),
      10_000,
      "10 probes for 1,000 completions",
    );
    const after = completed();
    const bytes = after.bytes - before.bytes;
    assert.ok(bytes < 1000 * 10, `${bytes} bytes of task.completed for 1,000 tasks: probes only`);
    assert.equal(after.bodies - before.bodies, after.empty - before.empty, "every body empty");
    assert.equal(scenario.completions().length, 0, "nobody heard a completion");
    console.log(`1,000 unheard completions: ${after.empty - before.empty} probes, ${bytes} bytes`);

    // One more task, and its probe: every completion so far has been probed for (a probe takes
    // all that are queued), so the next events the worker holds are those after the binding.
    await run(1, "one more task");
    await within(tally.until(() => completed().empty > after.empty), 5_000, "its probe");
    await scenario.listen("task.completed");
    const bound = completed();
    const heard = await run(300, "300 tasks handled after the binding");
    const ids = () => new Set(scenario.completions().map((e) => e.taskId));
    await scenario.waitForEvent(
      () => heard.every((task) => ids().has(task.id)),
      "a completion for each of the 300 tasks run after the binding",
      10_000,
    );
    assert.ok(completed().empty > bound.empty, "the first of them waited on a probe");
    await worker.close();
    scenario.pass();
  },
});
