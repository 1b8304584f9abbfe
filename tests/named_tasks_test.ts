/**
 * Named tasks against the real broker: one queue carries several kinds of task, each reaching
 * the handler of its name on whichever worker takes it; a name no handler knows is dead-lettered
 * with the reason `no handler for task "x"`, and its caller hears why.
 */
import assert from "node:assert/strict";
import type { TaskEvent } from "../lib/core/events.ts";
import { TaskDeadError } from "../lib/core/errors.ts";
import { createTask } from "../lib/core/task.ts";
import { createWorker } from "../lib/core/worker/mod.ts";
import type { Worker } from "../lib/core/worker/types.ts";
import { Scenario, within } from "../testing/scenario.ts";
import { options, trackedProducer } from "./_calls.ts";

const NAMES = ["resize", "email", "report"] as const;

/** One run of a handler: which handler, on which worker, for which task. */
interface Run {
  handler: string;
  worker: string;
  taskId: string;
  taskName: string;
}

Deno.test({
  name: "a queue mixing three task names, served by two workers: each task reaches the handler " +
    "of its name; a name no handler knows is dead-lettered with its reason",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const { url, queue } = scenario;
    const PER_NAME = 20;
    const runs: Run[] = [];
    const ran = Promise.withResolvers<void>();
    const expected = PER_NAME * NAMES.length + 1; // and one published by plain amqplib
    const events: TaskEvent[] = [];
    const workers: Worker[] = [];
    try {
      for (const worker of ["w1", "w2"]) {
        // The same three handlers on both workers, each noting which of them ran which task.
        const handlers = Object.fromEntries(NAMES.map((handler) => [
          handler,
          async (task: { id: string; name: string }) => {
            runs.push({ handler, worker, taskId: task.id, taskName: task.name });
            if (runs.length === expected) ran.resolve();
            // A little work, so that the broker has to spread the tasks over both workers.
            await new Promise((resolve) => setTimeout(resolve, 5));
            return `${handler} done`;
          },
        ]));
        const created = await createWorker({ url, queue, name: worker, handlers });
        workers.push(created);
        for (const type of ["task.completed", "task.dead", "task.failed"] as const) {
          created.addEventListener(type, (event) => events.push(event.detail));
        }
      }
      const dead = await scenario.collect();
      await using tracked = await trackedProducer(scenario);
      const { producer } = tracked;
      const enqueued = new Map<string, string>();
      let unknown = "";

      await scenario.step(t, `${PER_NAME} tasks of each name, interleaved`, async () => {
        const tasks = await producer.enqueueMany(
          Array.from({ length: PER_NAME * NAMES.length }, (_, i) => i),
          { options: (i) => ({ name: NAMES[i % NAMES.length]! }) },
        );
        for (const task of tasks) enqueued.set(task.id, task.name);
      });

      await scenario.step(t, "a task named by a plain AMQP publisher's type", async () => {
        // As a Python or plain amqplib publisher names it: the message's `type` property.
        const task = createTask({ from: "amqplib" });
        await scenario.publish(task, { type: "email" });
        enqueued.set(task.id, "email");
      });

      await scenario.step(t, "a task named x, which no handler knows", async () => {
        unknown = (await producer.enqueue({ what: "unknown" }, { name: "x" })).id;
      });

      await scenario.step(t, "each task ran once, in the handler of its name", async () => {
        await within(ran.promise, 30_000, `${expected} runs`);
        await dead.waitFor(1, "the dead letter of task x");
        assert.equal(runs.length, expected, "no task ran twice");
        for (const run of runs) {
          assert.equal(run.handler, enqueued.get(run.taskId), `task ${run.taskId}'s handler`);
          assert.equal(run.taskName, run.handler, "task.name is its name");
        }
        assert.deepEqual(new Set(runs.map((run) => run.taskId)), new Set(enqueued.keys()));
        for (const worker of ["w1", "w2"]) {
          const names = new Set(runs.filter((run) => run.worker === worker).map((r) => r.handler));
          console.log(`${worker} ran ${runs.filter((run) => run.worker === worker).length} tasks`);
          assert.deepEqual([...names].sort(), [...NAMES].sort(), `${worker} ran every name`);
        }
        assert.ok(runs.every((run) => run.taskId !== unknown), "no handler ran task x");
      });

      await scenario.step(t, "the completions carry the task's name", async () => {
        await scenario.waitForEvent(
          () => events.filter((e) => e.type === "task.completed").length >= expected,
          `${expected} completions`,
        );
        for (const event of events.filter((e) => e.type === "task.completed")) {
          assert.equal(event.name, enqueued.get(event.taskId), `the name of ${event.taskId}`);
        }
      });

      await scenario.step(t, "task x was dead-lettered with its reason", () => {
        const reason = 'no handler for task "x"';
        const deaths = events.filter((e) => e.type === "task.dead");
        assert.equal(deaths.length, 1, "one task.dead");
        assert.equal(deaths[0]!.taskId, unknown);
        assert.equal(deaths[0]!.name, "x");
        assert.equal(deaths[0]!.reason, reason);
        assert.equal(events.filter((e) => e.type === "task.failed").length, 0, "no retries");
        const [letter] = dead.messages;
        assert.equal(letter!.properties.messageId, unknown);
        assert.equal(letter!.properties.type, "x", "the dead letter keeps its name");
        assert.equal(letter!.properties.headers?.["x-tareas-reason"], reason);
      });

      await scenario.step(
        t,
        "calling task x rejects with TaskDeadError and the reason",
        async () => {
          const id = crypto.randomUUID();
          const error = await within(
            producer.call({ what: "unknown" }, { name: "x", id }).then(
              () => assert.fail("the call resolved"),
              (error: unknown) => error,
            ),
            15_000,
            "the call of task x to settle",
          );
          assert.ok(error instanceof TaskDeadError, `a TaskDeadError, not ${error}`);
          assert.equal(error.taskId, id);
          assert.equal(error.reason, 'no handler for task "x"');
          assert.equal(error.message, `Task ${id} was dead-lettered: no handler for task "x"`);
          await dead.waitFor(2, "the dead letter of the called task x");
        },
      );

      await scenario.step(
        t,
        "a task without a name is the default one's, which none has here",
        () =>
          within(
            producer.call(null).then(
              () => assert.fail("the call resolved"),
              (error: unknown) => {
                assert.ok(error instanceof TaskDeadError);
                assert.equal(error.reason, 'no handler for task "default"');
              },
            ),
            15_000,
            "the call of an unnamed task to settle",
          ),
      );
    } finally {
      for (const worker of workers) await worker.close();
    }
    assert.equal(await scenario.ready(), 0, "nothing left in the work queue");
    scenario.pass();
  },
});

Deno.test({
  name: "createWorker refuses handlers that are not functions, and both handler and " +
    "handlers.default",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    const { url, queue } = scenario;
    await assert.rejects(
      createWorker({ url, queue, handlers: { resize: "resize.ts" as never } }),
      /Invalid handlers: "resize" must be a function/,
    );
    await assert.rejects(
      createWorker({ url, queue, handler: () => {}, handlers: { default: () => {} } }),
      /give handler or handlers.default, not both/,
    );
    await assert.rejects(createWorker({ url, queue, handlers: {} }), /Invalid handler/);
    assert.equal(await scenario.queueExists(queue), false, "nothing was declared");
    scenario.pass();
  },
});

Deno.test({
  name: "observers read task events with the task's name",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    await using _worker = await createWorker({
      url: scenario.url,
      queue: scenario.queue,
      name: "named",
      handlers: { resize: () => {} },
    });
    await using tracked = await trackedProducer(scenario);
    const task = await tracked.producer.enqueue(null, { name: "resize" });
    const event = await scenario.waitForEvent(
      (e) => e.type === "task.completed" && (e as TaskEvent).taskId === task.id,
      "the task's task.completed event",
      10_000,
    ) as TaskEvent;
    assert.equal(event.name, "resize");
    scenario.pass();
  },
});

Deno.test({
  name: "deno task work --handler with an object of handlers by name, two workers: produce " +
    "--name reaches its handler; a name the module lacks is dead-lettered with its reason",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const dead = await scenario.collect();
    for (const name of ["w1", "w2"]) {
      await scenario.startWorker(name, ["--handler", "tests/handlers/named.ts"]);
    }

    await scenario.step(t, "produce --name resize, --name email, --name x", async () => {
      for (const name of ["resize", "email"]) {
        await scenario.produce(["--count", "4", "--name", name, "--min", "0", "--max", "0"]);
      }
      await scenario.produce(["--count", "1", "--name", "x"]);
    });

    await scenario.step(t, "each named task completed, with its name", async () => {
      await scenario.waitForCompleted(8);
      const names = scenario.completions().map((e) => e.name).sort();
      assert.deepEqual(names, [...Array(4).fill("email"), ...Array(4).fill("resize")]);
    });

    await scenario.step(t, "task x was dead-lettered with its reason, not retried", async () => {
      const death = await scenario.waitForEvent(
        (e) => e.type === "task.dead",
        "task x's task.dead",
      ) as TaskEvent;
      assert.equal(death.name, "x");
      assert.equal(death.reason, 'no handler for task "x"');
      await dead.waitFor(1, "task x's dead letter");
      assert.equal(dead.messages[0]!.properties.type, "x");
      assert.equal(scenario.events.filter((e) => e.type === "task.failed").length, 0);
    });

    await scenario.step(t, "a caller gets the result of the module's handler", async () => {
      await using tracked = await trackedProducer(scenario);
      const result = await within(
        tracked.producer.call({ width: 200 }, { name: "resize" }),
        15_000,
        "the call's result",
      );
      assert.deepEqual(result, { resized: { width: 200 } });
    });
    scenario.pass();
  },
});
