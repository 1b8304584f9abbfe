/**
 * The short-task setting (`--prefetch 200 --concurrency 200`, acks that cover runs of finished
 * deliveries) weakens nothing: a SIGKILLed worker's unacked tasks come back and complete, at most
 * its prefetch of them, and no task is acked before it finished. And its acks do cover runs: far
 * fewer acks than tasks.
 */
import assert from "node:assert/strict";
import type { TaskEvent } from "../lib/events.ts";
import { createProducer, createWorker } from "../mod.ts";
import { proxyTarget, startProxy, throughProxy } from "../testing/proxy.ts";
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

/** The start of an AMQP basic.ack method frame's payload: its size (13), class 60, method 80. */
const ACK_FRAME = [0x00, 0x00, 0x00, 0x0d, 0x00, 0x3c, 0x00, 0x50];

/** Counts the basic.ack frames in a client's byte stream, chunk by chunk. */
function ackCounter(): { count: () => number; tap: (bytes: Uint8Array) => void } {
  let count = 0;
  let tail = new Uint8Array(0); // A frame may straddle two chunks.
  return {
    count: () => count,
    tap: (bytes) => {
      const data = new Uint8Array(tail.length + bytes.length);
      data.set(tail);
      data.set(bytes, tail.length);
      for (let i = 0; i + ACK_FRAME.length <= data.length; i++) {
        if (ACK_FRAME.every((byte, j) => data[i + j] === byte)) count++;
      }
      tail = data.slice(Math.max(0, data.length - ACK_FRAME.length + 1));
    },
  };
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
    await using worker = await createWorker({
      url: throughProxy(url, proxy.port),
      queue,
      prefetch: 200,
      concurrency: 200,
      handler: () => {
        if (++handled === 1000) all.resolve();
      },
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
