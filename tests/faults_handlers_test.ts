/**
 * Fault matrix, task side: handlers that throw, crash the process or hang, and bodies that are not
 * tasks. Each is bounded and ends in `<queue>.dead` exactly once, and the worker keeps working.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { ConsumeMessage } from "../lib/deps/amqplib.ts";
import type { TaskEvent, WorkerEvent } from "../lib/core/events.ts";
import { createProducer } from "../lib/core/producer/mod.ts";
import { createTask, encodeTask, type Task } from "../lib/core/task.ts";
import { DELIVERY_LIMIT } from "../lib/core/topology.ts";
import { type Child, Scenario } from "../testing/scenario.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

/** A handler module under tests/handlers/, as a URL the worker's --handler accepts. */
function handler(name: string): string {
  return new URL(`./handlers/${name}.ts`, import.meta.url).href;
}

/** The events of one type for one task, in arrival order. */
function eventsOf(scenario: Scenario, task: Task, type: TaskEvent["type"]): TaskEvent[] {
  return scenario.taskEvents(task.id).filter((e) => e.type === type);
}

/** Position of an event in the scenario's event log (the order the events arrived in). */
function header(message: ConsumeMessage, name: string): unknown {
  return message.properties.headers?.[name];
}

Deno.test({
  name: "a handler that always throws gets exactly --max-attempts attempts with backoff, then " +
    "one dead letter, and its retries do not block other tasks",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const dead = await scenario.collect();
    await scenario.startWorker("thrower", [
      "--handler",
      handler("always_throws"),
      "--max-attempts",
      "4",
      "--retry-delay",
      "0.1",
      "--concurrency",
      "1",
      "--time-scale",
      "0.05",
    ]);
    const failing = createTask(null, { seq: 1, complexity: 1 });
    const other = createTask(null, { seq: 2, complexity: 1 });

    await scenario.step(t, "the failing task and another one are published together", async () => {
      await scenario.publish(failing);
      await scenario.publish(other);
    });

    await scenario.step(t, "the failing task is dead-lettered after its 4th attempt", async () => {
      await scenario.waitForEvent(
        (e) => e.type === "task.dead" && "taskId" in e && e.taskId === failing.id,
        "task.dead of the failing task",
      );
    });

    await scenario.step(t, "attempts 1 to 3 failed, then attempt 4 was dead-lettered", () => {
      const failed = eventsOf(scenario, failing, "task.failed");
      const deadEvents = eventsOf(scenario, failing, "task.dead");
      assert.deepEqual(failed.map((e) => e.attempt), [1, 2, 3]);
      for (const e of failed) assert.match(e.reason ?? "", /Task #1 always fails/);
      assert.equal(deadEvents.length, 1);
      assert.equal(deadEvents[0]!.attempt, 4);
      assert.match(deadEvents[0]!.reason ?? "", /always fails \(attempt 4\) \(after 4 attempts\)/);
      assert.equal(eventsOf(scenario, failing, "task.completed").length, 0);
    });

    /** When an attempt started: its end event's time minus how long its handler ran. */
    const startOf = (end: TaskEvent) => Date.parse(end.at) - (end.durationMs ?? 0);
    const ends = () => [
      ...eventsOf(scenario, failing, "task.failed"),
      ...eventsOf(scenario, failing, "task.dead"),
    ];

    await scenario.step(
      t,
      "each retry waited at least its backoff delay (100, 200, 400 ms)",
      () => {
        const attempts = ends();
        for (const [i, delay] of [100, 200, 400].entries()) {
          // Event times are whole milliseconds and durations rounded: 2 ms of slack.
          const waited = startOf(attempts[i + 1]!) - Date.parse(attempts[i]!.at);
          assert.ok(waited >= delay - 2, `retry ${i + 1} waited ${waited} ms, expected ${delay}`);
        }
      },
    );

    await scenario.step(
      t,
      "with --concurrency 1 the other task ran while the failing one waited",
      () => {
        const [firstFailure, secondAttempt] = ends();
        const otherDone = eventsOf(scenario, other, "task.completed")[0]!;
        assert.ok(
          Date.parse(firstFailure!.at) <= startOf(otherDone) + 2,
          "the other task started after the first failure",
        );
        assert.ok(
          Date.parse(otherDone.at) <= startOf(secondAttempt!) + 2,
          "and completed before the second attempt started",
        );
      },
    );

    await scenario.step(
      t,
      "<queue>.dead holds the task once, with its reason and attempts",
      async () => {
        const [message] = await dead.waitFor(1, "the failing task in <queue>.dead");
        assert.equal(message!.properties.messageId, failing.id);
        assert.match(String(header(message!, "x-tareas-reason")), /always fails.*after 4 attempts/);
        assert.equal(header(message!, "x-tareas-attempts"), 4);
        assert.equal(header(message!, "x-tareas-worker"), "thrower");
        assert.deepEqual(message!.content.toString(), encodeTask(failing).toString());
      },
    );

    await scenario.step(t, "after a graceful stop nothing is left anywhere", async () => {
      const [worker] = scenario.children;
      worker!.kill("SIGTERM");
      assert.equal((await worker!.exit()).code, 0);
      assert.equal(dead.messages.length, 1, "exactly one dead letter");
      assert.equal(await scenario.ready(), 0, "work queue empty");
    });
    scenario.pass();
  },
});

Deno.test({
  name: "a handler that kills its worker on every delivery is stopped by the delivery limit and " +
    "dead-lettered, while the other tasks complete and produce --wait sees the end",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const dead = await scenario.collect();
    const args = ["--handler", handler("kills_itself"), "--time-scale", "0.05"];
    let spawned = 0;
    let supervising = true;

    /**
     * Starts a worker, and another one whenever it dies, until the test stops supervising. Not
     * waiting for `worker.online`: a worker whose first delivery is task #1 dies before that
     * event leaves the process.
     */
    function spawn(): Child {
      const child = scenario.spawnWorker(`w${++spawned}`, args);
      child.status.then(() => {
        if (supervising) spawn();
      });
      return child;
    }

    try {
      await scenario.step(t, "two supervised workers come online", async () => {
        spawn();
        spawn();
        await scenario.waitForEvent(
          () => scenario.events.filter((e) => e.type === "worker.online").length >= 2,
          "two workers online",
        );
      });

      let producer!: Child;
      await scenario.step(
        t,
        "produce --wait publishes six tasks; #1 is the poison one",
        async () => {
          producer = await scenario.startWaitingProducer(6, 1, 20);
        },
      );

      let message!: ConsumeMessage;
      await scenario.step(
        t,
        "task #1 is dead-lettered once its delivery limit is hit",
        async () => {
          message = (await dead.waitFor(1, "task #1 in <queue>.dead", 60_000))[0]!;
          assert.equal(JSON.parse(message.content.toString()).seq, 1);
          const deaths = header(message, "x-death") as { reason: string; queue: string }[];
          if (deaths === undefined) {
            // Dead-lettered by a worker that refused the delivery the broker would not retry.
            assert.match(String(header(message, "x-tareas-reason")), /deliver/i);
          } else {
            // Dead-lettered by the broker: the last delivery crashed its worker too.
            assert.ok(Array.isArray(deaths), "x-death header");
            assert.equal(deaths[0]!.reason, "delivery_limit");
            assert.equal(deaths[0]!.queue, scenario.queue);
            assert.equal(header(message, "x-first-death-reason"), "delivery_limit");
          }
        },
      );

      await scenario.step(t, "the other five tasks all completed", async () => {
        await scenario.waitForCompleted(5, 60_000);
        const seqs = scenario.completions().map((e) => e.seq).sort((a, b) => a - b);
        assert.deepEqual([...new Set(seqs)], [2, 3, 4, 5, 6]);
      });

      await scenario.step(t, `task #1 was delivered at most DELIVERY_LIMIT + 1 times`, async () => {
        // Each fatal delivery wrote one line, then killed its worker.
        const deliveries: { child: Child; attempt: number }[] = [];
        for (const child of scenario.children.filter((c) => c.name !== "producer")) {
          for (const line of child.lines) {
            const attempt = /^kills_itself: attempt (\d+)$/.exec(line)?.[1];
            if (attempt !== undefined) deliveries.push({ child, attempt: Number(attempt) });
          }
        }
        deliveries.sort((a, b) => a.attempt - b.attempt);
        console.log(
          `task #1 was delivered ${deliveries.length} times (attempts ` +
            `${deliveries.map((d) => d.attempt).join(", ")}); ${spawned} workers started`,
        );
        assert.ok(deliveries.length >= 1 && deliveries.length <= DELIVERY_LIMIT + 1);
        assert.deepEqual(
          deliveries.map((d) => d.attempt),
          deliveries.map((_, i) => i + 1),
          "each delivery counted as one more attempt",
        );
        for (const { child } of deliveries) {
          assert.equal((await child.exit()).signal, "SIGKILL", `${child.name} killed itself`);
        }
        const completions = scenario.taskEvents(message.properties.messageId as string)
          .filter((e) => e.type === "task.completed");
        assert.equal(completions.length, 0, "no worker completed task #1");
      });

      await scenario.step(t, "produce --wait ends, with task #1 reported dead", async () => {
        const status = await producer.exit(30_000);
        const output = producer.lines.join("\n");
        assert.equal(status.code, 3, `produce --wait exits 3 (a task dead-lettered):\n${output}`);
        assert.match(output, /5\/6 tasks completed/);
        assert.match(output, /task #1 \S+ dead-lettered/);
      });
    } finally {
      supervising = false;
    }
    assert.equal(dead.messages.length, 1, "exactly one dead letter");
    scenario.pass();
  },
});

Deno.test({
  name: "malformed, wrong-schema and oversized bodies are dead-lettered once with their reason, " +
    "and the worker goes on",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const dead = await scenario.collect();
    const worker = await scenario.startWorker("picky", ["--max-body", "1024", "--time-scale", "0"]);
    const cases: { id: string | undefined; body: Buffer; reason: RegExp }[] = [
      { id: "not-json", body: Buffer.from("{not json"), reason: /^Body is not JSON$/ },
      { id: undefined, body: Buffer.from([0xff, 0xfe, 0x00]), reason: /^Body is not JSON$/ },
      {
        id: "wrong-schema",
        body: Buffer.from(JSON.stringify({ id: "x", seq: "one", complexity: 1 })),
        reason: /^Body is not a task: "seq" must be a non-negative integer$/,
      },
      { id: "array", body: Buffer.from("[1,2]"), reason: /^Body is not a task: expected a JSON/ },
      {
        id: "oversized",
        body: Buffer.from(
          JSON.stringify({
            ...createTask(null, { seq: 9, complexity: 0 }),
            padding: "x".repeat(2000),
          }),
        ),
        reason: /^Body too large: \d{4} bytes, limit 1024$/,
      },
    ];

    await scenario.step(t, "the bad bodies are published straight to the work queue", async () => {
      for (const { id, body } of cases) await scenario.publish(body, id ? { messageId: id } : {});
    });

    await scenario.step(t, "each lands in <queue>.dead exactly once, with its reason", async () => {
      await dead.waitFor(cases.length, `${cases.length} dead letters`);
      for (const { id, body, reason } of cases) {
        const matching = dead.messages.filter((m) => m.properties.messageId === id);
        assert.equal(matching.length, 1, `one dead letter with message id ${id}`);
        assert.ok(Buffer.from(matching[0]!.content).equals(body), `body of ${id} kept as is`);
        assert.match(String(header(matching[0]!, "x-tareas-reason")), reason);
        assert.equal(header(matching[0]!, "x-tareas-attempts"), 1);
      }
    });

    await scenario.step(t, "a task.dead event names each one", async () => {
      for (const { id, reason } of cases) {
        const event = await scenario.waitForEvent<TaskEvent>(
          (e) => e.type === "task.dead" && e.taskId === (id ?? "(no message id)"),
          `task.dead of ${id}`,
        );
        assert.match(event.reason ?? "", reason);
      }
      assert.equal(scenario.events.filter((e) => e.type === "task.started").length, 0);
    });

    await scenario.step(t, "the worker is still online and completes a valid task", async () => {
      const valid = createTask(null, { seq: 1, complexity: 0 });
      await scenario.publish(valid);
      const done = await scenario.waitForEvent<TaskEvent>(
        (e) => e.type === "task.completed",
        "the valid task to complete",
      );
      assert.equal(done.taskId, valid.id);
      assert.equal(done.worker, "picky");
      assert.ok(worker.running, "the worker process never exited");
      assert.equal(
        scenario.events.filter((e) => e.type === "worker.online").length,
        1,
        "it never had to reconnect",
      );
    });

    await scenario.step(t, "nothing else was dead-lettered and the queue is empty", async () => {
      worker.kill("SIGTERM");
      assert.equal((await worker.exit()).code, 0);
      assert.equal(dead.messages.length, cases.length);
      assert.equal(await scenario.ready(), 0);
    });
    scenario.pass();
  },
});

Deno.test({
  name: "a handler that hangs and ignores its signal is timed out, retried, then dead-lettered",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const dead = await scenario.collect();
    const worker = await scenario.startWorker("patient", [
      "--handler",
      handler("hangs"),
      "--task-timeout",
      "0.5",
      "--max-attempts",
      "2",
      "--retry-delay",
      "0.1",
      "--time-scale",
      "0.05",
    ]);
    const hanging = createTask(null, { seq: 1, complexity: 1 });
    await scenario.publish(hanging);

    await scenario.step(
      t,
      "the task is dead-lettered with a timeout reason after 2 attempts",
      async () => {
        const event = await scenario.waitForEvent<TaskEvent>(
          (e) => e.type === "task.dead" && "taskId" in e && e.taskId === hanging.id,
          "task.dead of the hanging task",
        );
        assert.equal(event.attempt, 2);
        assert.match(event.reason ?? "", /^Task timed out after 0\.5 s \(after 2 attempts\)$/);
      },
    );

    await scenario.step(t, "attempt 1 was aborted after 0.5 s and retried", () => {
      const started = eventsOf(scenario, hanging, "task.started");
      const failed = eventsOf(scenario, hanging, "task.failed");
      assert.deepEqual(started.map((e) => e.attempt), [1, 2]);
      assert.equal(failed.length, 1);
      assert.match(failed[0]!.reason ?? "", /^Task timed out after 0\.5 s$/);
      assert.ok(failed[0]!.durationMs! >= 500, `ran ${failed[0]!.durationMs} ms before abort`);
      assert.ok(failed[0]!.durationMs! < 5_000, `aborted promptly: ${failed[0]!.durationMs} ms`);
    });

    await scenario.step(t, "<queue>.dead holds it once with the timeout reason", async () => {
      const [message] = await dead.waitFor(1, "the hanging task in <queue>.dead");
      assert.equal(message!.properties.messageId, hanging.id);
      assert.match(String(header(message!, "x-tareas-reason")), /timed out after 0\.5 s/);
      assert.equal(header(message!, "x-tareas-attempts"), 2);
    });

    await scenario.step(
      t,
      "the abandoned handler does not hold the worker's only slot",
      async () => {
        const next = createTask(null, { seq: 2, complexity: 1 });
        await scenario.publish(next);
        const done = await scenario.waitForEvent<TaskEvent>(
          (e) => e.type === "task.completed",
          "the next task to complete",
        );
        assert.equal(done.taskId, next.id);
        worker.kill("SIGTERM");
        assert.equal((await worker.exit()).code, 0);
        assert.equal(dead.messages.length, 1);
        assert.equal(await scenario.ready(), 0);
      },
    );
    scenario.pass();
  },
});

Deno.test({
  name: "a worker killed right after it acked a task has already told its listeners that the " +
    "task completed",
  ...options,
  async fn() {
    // Tried: a worker SIGKILLed in the turn after task #1's handler returned, while a listener
    // was bound to task.completed: its ack and its completion event leave in the same write.
    await using scenario = await Scenario.open();
    const child = await scenario.startWorker("dies", ["--handler", handler("dies_after_return")]);
    const task = createTask(null, { seq: 1, complexity: 0 });
    await scenario.publish(task);
    const status = await child.status;
    assert.equal(status.signal, "SIGKILL", "the handler's timer killed the worker");
    await scenario.waitForEvent(
      () => eventsOf(scenario, task, "task.completed").length > 0,
      "task #1's completion, from the killed worker",
      5_000,
    );
    assert.equal(eventsOf(scenario, task, "task.completed")[0]!.worker, "dies");
    // Once the broker has closed the dead worker's channel, an unacked task would be ready again.
    await scenario.consumersBecome(0);
    assert.equal(await scenario.ready(), 0, "acked: the broker did not requeue it");
    scenario.pass();
  },
});

Deno.test({
  name: "a task someone waits for is heard before its ack, even from a worker that has seen " +
    "nobody listen to completions",
  ...options,
  async fn() {
    // Tried: a worker that completed 30 tasks while nobody was bound to task.completed (so it
    // sends such events every 100 ms, not before each ack), then a waiter binding and enqueueing
    // task #1 as produce --wait does, whose handler's turn ends with a SIGKILL.
    await using scenario = await Scenario.open(undefined, { listen: "worker.*" });
    const { url, queue } = scenario;
    const child = await scenario.startWorker("dies", ["--handler", handler("dies_after_return")]);
    await using producer = await createProducer({ url, queue });
    await producer.enqueueMany(Array.from({ length: 30 }, (_, n) => n), {
      options: (n) => ({ seq: n + 2 }),
    });
    const status = await scenario.waitForEvent<WorkerEvent>(
      (e) => e.type === "worker.status" && e.worker === "dies" && e.completed === 30,
      "the worker's status after 30 tasks",
    );
    assert.equal(status.lastMinute, 30, "all 30 within the last minute");

    await scenario.listen("task.completed");
    await using waiting = await createProducer({ url, queue, awaited: true });
    const task = await waiting.enqueue(null, { seq: 1 });
    assert.equal((await child.status).signal, "SIGKILL", "the handler's timer killed the worker");
    await scenario.waitForEvent(
      () => scenario.taskEvents(task.id).some((e) => e.type === "task.completed"),
      "task #1's completion, from the killed worker",
      5_000,
    );
    await scenario.consumersBecome(0);
    assert.equal(await scenario.ready(), 0, "acked: the broker did not requeue it");
    scenario.pass();
  },
});
