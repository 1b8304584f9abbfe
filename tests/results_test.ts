/**
 * Results (`producer.call`, `createProducer({ onResult })`) against the real broker: a caller
 * hears exactly one result when the worker running its task is SIGKILLed mid-task, and when a
 * worker dies after sending the result and before its ack (the task runs twice, sends two); the
 * result arrives when the caller's own connection is cut while the task runs.
 */
import assert from "node:assert/strict";
import type { TaskEvent } from "../lib/core/events.ts";
import type { Producer } from "../lib/core/producer/types.ts";
import type { TaskResult } from "../lib/core/results.ts";
import { createWorker } from "../lib/core/worker/mod.ts";
import { isMethod, proxyTarget, startProxy, throughProxy } from "../testing/proxy.ts";
import { type Child, Scenario, within } from "../testing/scenario.ts";
import { options, RETURNS_RESULT, type RunResult, startedLine, trackedProducer } from "./_calls.ts";

/** The runs of task `taskId` that `children` started, as `[worker, attempt]`, in order. */
function runsOf(children: Child[], taskId: string): [string, number][] {
  return children.flatMap((child) =>
    child.lines.filter((line) => startedLine(taskId).test(line)).map((line) =>
      [child.name, Number(/attempt (\d+)/.exec(line)![1])] as [string, number]
    )
  );
}

/** Resolves with a completion of `taskId` by `worker`. */
function completedBy(scenario: Scenario, taskId: string, worker: string): Promise<TaskEvent> {
  return scenario.waitForEvent(
    (e) => e.type === "task.completed" && e.worker === worker && e.taskId === taskId,
    `${worker} to complete task ${taskId}`,
  );
}

Deno.test({
  name: "call through a worker SIGKILLed mid-task resolves once, with the result of the run " +
    "that another worker finished",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const heard: TaskResult[] = [];
    await using tracked = await trackedProducer(scenario, {
      onResult: (result) => heard.push(result),
    });
    const { producer } = tracked;
    const id = crypto.randomUUID();
    let a!: Child;
    let call!: Promise<RunResult>;

    await scenario.step(t, "worker A starts the task's slow first run", async () => {
      a = await scenario.startWorker("A", ["--handler", RETURNS_RESULT]);
      call = producer.call<RunResult>({ firstRunMs: 60_000 }, { id });
      call.catch(() => {}); // Awaited below; a failed step must not leave it unhandled.
      await a.waitForLine(startedLine(id, 1));
    });

    await scenario.step(t, "A is SIGKILLed while it runs", async () => {
      a.kill("SIGKILL");
      assert.equal((await a.exit()).signal, "SIGKILL");
      await scenario.consumersBecome(0);
    });

    let b!: Child;
    let bPid = 0;
    await scenario.step(
      t,
      "worker B runs it again; the call resolves with B's result",
      async () => {
        b = await scenario.startWorker("B", ["--handler", RETURNS_RESULT]);
        const result = await within(call, 30_000, "the call's result");
        const line = await b.waitForLine(startedLine(id, 2));
        bPid = Number(startedLine(id, 2).exec(line)![1]);
        assert.deepEqual(result, { taskId: id, attempt: 2, pid: bPid });
        await completedBy(scenario, id, "B");
      },
    );

    await scenario.step(t, "the task ran twice; the producer heard one result", async () => {
      await afterEarlierReplies(producer);
      assert.deepEqual(runsOf([a, b], id), [["A", 1], ["B", 2]]);
      assert.deepEqual(heard.filter((r) => r.taskId === id), [
        { taskId: id, status: "completed", result: { taskId: id, attempt: 2, pid: bPid } },
      ]);
    });
    scenario.pass();
  },
});

Deno.test({
  name: "a worker that dies after sending the result and before its ack: the task runs twice " +
    "and sends two results, and the caller and onResult hear one",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const heard: TaskResult[] = [];
    await using tracked = await trackedProducer(scenario, {
      onResult: (result) => heard.push(result),
    });
    const { producer } = tracked;
    const id = crypto.randomUUID();
    const replies = `${scenario.queue}.reply.`;
    let resultsSent = 0;
    // Worker A's connection goes through a proxy that kills A, as far as the broker can tell,
    // right before its first basic.ack: after the result's publish (which the worker has seen
    // confirmed before it acks), before the task's ack.
    await using proxy = startProxy(proxyTarget(scenario.url), {
      dieAt: (command) => {
        if (command.kind === "publish" && command.routingKey.startsWith(replies)) resultsSent++;
        return command.kind === "ack" ? "before" : undefined;
      },
    });
    let a!: Child;
    let aPid = 0;
    let call!: Promise<RunResult>;

    await scenario.step(
      t,
      "A runs the task, sends its result, and dies before its ack",
      async () => {
        a = await scenario.startWorker("A", ["--handler", RETURNS_RESULT], {
          AMQP_URL: throughProxy(scenario.url, proxy.port),
        });
        call = producer.call<RunResult>(null, { id });
        call.catch(() => {}); // Awaited below; a failed step must not leave it unhandled.
        await within(proxy.died, 30_000, "A's first ack to reach the proxy");
        a.kill("SIGKILL");
        assert.equal((await a.exit()).signal, "SIGKILL");
        assert.equal(resultsSent, 1, "A sent the result before the ack");
        const line = await a.waitForLine(startedLine(id, 1));
        aPid = Number(startedLine(id, 1).exec(line)![1]);
      },
    );

    await scenario.step(t, "the call resolves with A's result", async () => {
      const result = await within(call, 30_000, "the call's result");
      assert.deepEqual(result, { taskId: id, attempt: 1, pid: aPid });
    });

    let b!: Child;
    await scenario.step(t, "worker B runs the task again and sends a second result", async () => {
      b = await scenario.startWorker("B", ["--handler", RETURNS_RESULT]);
      await b.waitForLine(startedLine(id, 2));
      // B publishes a task.completed only once the broker confirmed its result.
      await completedBy(scenario, id, "B");
    });

    await scenario.step(t, "the caller and onResult heard one result: A's", async () => {
      await afterEarlierReplies(producer);
      assert.deepEqual(runsOf([a, b], id), [["A", 1], ["B", 2]]);
      assert.deepEqual(heard.filter((r) => r.taskId === id), [
        { taskId: id, status: "completed", result: { taskId: id, attempt: 1, pid: aPid } },
      ]);
    });
    scenario.pass();
  },
});

Deno.test({
  name: "call while the caller's connection is cut and comes back during the task: the result " +
    "still arrives",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const started = Promise.withResolvers<void>();
    const release = Promise.withResolvers<void>();
    await using _worker = await createWorker<{ n: number }>({
      url: scenario.url,
      queue: scenario.queue,
      name: "steady",
      handler: async (task) => {
        started.resolve();
        await release.promise;
        return { doubled: task.payload.n * 2 };
      },
    });
    const consumingAgain = Promise.withResolvers<void>();
    await using tracked = await trackedProducer(scenario, {
      // basic.consume on a later connection: the producer consumes its reply queue again.
      onFrame: (frame, connection) => {
        if (connection > 1 && isMethod(frame, 60, 20)) consumingAgain.resolve();
      },
    });
    let call!: Promise<unknown>;

    await scenario.step(t, "the called task starts", async () => {
      call = tracked.producer.call({ n: 21 });
      call.catch(() => {}); // Awaited below; a failed step must not leave it unhandled.
      await within(started.promise, 10_000, "the handler to start");
    });

    await scenario.step(t, "the caller's connection is cut; it reconnects by itself", async () => {
      tracked.proxy.cut();
      await within(consumingAgain.promise, 15_000, "the producer to consume its replies again");
    });

    await scenario.step(t, "the handler returns: the call resolves with its result", async () => {
      release.resolve();
      assert.deepEqual(await within(call, 15_000, "the call's result"), { doubled: 42 });
    });
    scenario.pass();
  },
});

Deno.test({
  name: "a result sent while its caller is cut off waits in the reply queue and reaches the " +
    "caller once it is back",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const started = Promise.withResolvers<void>();
    const release = Promise.withResolvers<void>();
    await using worker = await createWorker({
      url: scenario.url,
      queue: scenario.queue,
      name: "steady",
      handler: async (task) => {
        started.resolve();
        await release.promise;
        return `result of ${task.id}`;
      },
    });
    const completed = new Promise<void>((resolve) =>
      worker.addEventListener("task.completed", () => resolve())
    );
    await using tracked = await trackedProducer(scenario);
    const { producer, proxy } = tracked;
    let call!: Promise<unknown>;
    let id = "";

    await scenario.step(t, "the called task starts", async () => {
      id = crypto.randomUUID();
      call = producer.call(null, { id });
      call.catch(() => {}); // Awaited below; a failed step must not leave it unhandled.
      await within(started.promise, 10_000, "the handler to start");
    });

    await scenario.step(t, "the caller is cut off; the task completes meanwhile", async () => {
      // Cut, and every new connection held: the producer cannot come back until resume().
      proxy.cut();
      proxy.pause();
      release.resolve();
      // The worker publishes task.completed once the broker has confirmed the result.
      await within(completed, 10_000, "the task's completion");
    });

    await scenario.step(t, "the network is back: the call resolves with the result", async () => {
      proxy.resume();
      assert.equal(await within(call, 30_000, "the call's result"), `result of ${id}`);
    });
    scenario.pass();
  },
});

Deno.test({
  name: "call with a timeout rejects with a TimeoutError when no result comes in time, and the " +
    "task stays queued",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    await using tracked = await trackedProducer(scenario);
    const started = performance.now();
    await assert.rejects(
      within(tracked.producer.call(null, { timeout: 300 }), 10_000, "the call to time out"),
      (error: unknown) => error instanceof DOMException && error.name === "TimeoutError",
    );
    const ms = performance.now() - started;
    assert.ok(ms >= 300, `rejected after ${Math.round(ms)} ms, before its timeout`);
    assert.equal(await scenario.ready(), 1, "the task itself is still in the queue");
    scenario.pass();
  },
});

/**
 * Resolves once every reply sent to `producer` before now has been handed to it. Replies reach
 * the producer in the order they were sent, through one queue and one consumer: once the result
 * of a task enqueued now has come back, every result sent before it has.
 */
async function afterEarlierReplies(producer: Producer): Promise<void> {
  const result = await within(producer.call<RunResult>(null), 30_000, "a later call's result");
  assert.equal(result.attempt, 1);
}
