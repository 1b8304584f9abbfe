/**
 * Hostile input, as anyone who can publish to the broker could send it: messages on the work
 * queue and events on `<queue>.events` that once stalled a worker, bypassed the retry limit,
 * fooled `produce --wait` or crashed it. Every delivery must end acked, retried or dead-lettered,
 * and nothing on the events exchange may fool or crash a reader.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { ConsumeMessage } from "../lib/deps/amqplib.ts";
import type { TaskEvent } from "../lib/core/events.ts";
import { createTask } from "../lib/core/task.ts";
import { canStartPrivateNode, startPrivateNode } from "../lib/operate/local_broker.ts";
import { freshQueue, run, Scenario } from "../testing/scenario.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

function handler(name: string): string {
  return new URL(`./handlers/${name}.ts`, import.meta.url).href;
}

function header(message: ConsumeMessage, name: string): unknown {
  return message.properties.headers?.[name];
}

Deno.test({
  name: "a message whose headers cannot be copied (64 KiB of padding, a -1e300 double) is " +
    "dead-lettered with its reason, and the worker goes on",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const dead = await scenario.collect();
    const worker = await scenario.startWorker("sturdy", ["--time-scale", "0"]);
    // Tried: the body "not json at all" with a 65,410-byte header (copying it into the dead
    // letter overflowed amqplib's 64 KiB header buffer), and a header holding -1e300.
    const cases = [
      { id: "padded", headers: { "x-pad": "x".repeat(65_410) } },
      { id: "double", headers: { "x-huge": { "!": "double", value: -1e300 }, "x-kept": "yes" } },
    ];
    await scenario.step(t, "both are published to the work queue", async () => {
      for (const { id, headers } of cases) {
        await scenario.publish(Buffer.from("not json at all"), { messageId: id, headers });
      }
    });

    await scenario.step(t, "each is dead-lettered once, with its reason", async () => {
      await dead.waitFor(2, "two dead letters");
      for (const { id } of cases) {
        const [message] = dead.messages.filter((m) => m.properties.messageId === id);
        assert.ok(message, `a dead letter for ${id}`);
        assert.equal(header(message, "x-tareas-reason"), "Body is not JSON");
        assert.equal(header(message, "x-pad"), undefined, "the oversized header is dropped");
      }
      const double = dead.messages.find((m) => m.properties.messageId === "double")!;
      assert.equal(header(double, "x-kept"), "yes", "the sender's plain headers are kept");
      for (const { id } of cases) {
        await scenario.waitForEvent(
          (e) => e.type === "task.dead" && "taskId" in e && e.taskId === id,
          `task.dead of ${id}`,
        );
      }
    });

    await scenario.step(t, "the worker is not stalled: a valid task completes", async () => {
      const valid = createTask(null, { seq: 1 });
      await scenario.publish(valid);
      await scenario.waitForEvent(
        (e) => e.type === "task.completed" && "taskId" in e && e.taskId === valid.id,
        "the valid task to complete",
        10_000,
      );
      worker.kill("SIGTERM");
      assert.equal((await worker.exit()).code, 0);
      assert.equal(await scenario.ready(), 0);
    });
    scenario.pass();
  },
});

Deno.test({
  name: "retry counters taken from a message are validated: a negative or fractional attempt is " +
    "malformed, and a publisher's x-delivery-count on a first delivery is ignored",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const dead = await scenario.collect();
    await scenario.startWorker("counting", [
      ...["--handler", handler("always_throws"), "--max-attempts", "3", "--retry-delay", "0"],
      ...["--time-scale", "0"],
    ]);
    // Tried: x-tareas-attempts -1000000 on a task whose handler always fails (it was retried
    // 1,599 times in 8 s), 0.5 (a non-integer delay-queue TTL, a 406 and reconnect loops).
    const negative = createTask(null, { seq: 1 });
    const fraction = createTask(null, { seq: 1 });
    // Tried: x-delivery-count 5 on a first delivery (it was dead-lettered without running).
    const forgedCount = createTask(null, { seq: 2 });

    await scenario.step(t, "they are published", async () => {
      await scenario.publish(negative, { headers: { "x-tareas-attempts": -1_000_000 } });
      await scenario.publish(fraction, { headers: { "x-tareas-attempts": 0.5 } });
      await scenario.publish(forgedCount, { headers: { "x-delivery-count": 5 } });
    });

    await scenario.step(t, "bad attempt headers are dead-lettered without running", async () => {
      await dead.waitFor(2, "two dead letters");
      for (const task of [negative, fraction]) {
        const event = await scenario.waitForEvent<TaskEvent>(
          (e) => e.type === "task.dead" && "taskId" in e && e.taskId === task.id,
          `task.dead of ${task.id}`,
        );
        assert.match(
          event.reason ?? "",
          /^Header x-tareas-attempts must be a whole number from 0 to \d+, got -?\d/,
        );
        assert.equal(scenario.taskEvents(task.id).filter((e) => e.type !== "task.dead").length, 0);
      }
    });

    await scenario.step(t, "the forged delivery count is ignored: the task runs", async () => {
      const done = await scenario.waitForEvent<TaskEvent>(
        (e) => e.type === "task.completed" && "taskId" in e && e.taskId === forgedCount.id,
        "the task with a forged x-delivery-count to complete",
      );
      assert.equal(done.attempt, 1);
      assert.equal(dead.messages.length, 2, "nothing else was dead-lettered");
    });
    scenario.pass();
  },
});

Deno.test({
  name: "a forged task.completed without a task id, or of another task, does not end " +
    "produce --wait",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    const producer = await scenario.startWaitingProducer(1, 0, 4);
    const at = new Date().toISOString();
    // Tried: a completion without taskId made `produce --count 1 --wait` exit 0 with "0/1".
    scenario.publishEvent("task.completed", { type: "task.completed", worker: "forger", at });
    scenario.publishEvent("task.completed", [{
      type: "task.completed",
      worker: "forger",
      at,
      taskId: "someone-else",
      seq: 1,
      attempt: 1,
      redelivered: false,
    }]);
    scenario.publishEvent("task.completed", "{not json");
    const status = await producer.exit(20_000);
    assert.equal(status.code, 1, producer.output());
    assert.match(producer.lines.join("\n"), /Timed out after 4 s: 0\/1 tasks completed/);
    scenario.pass();
  },
});

Deno.test({
  name: "a forged task.started without a task id does not crash --timeline, and junk worker " +
    "names reach neither the terminal raw nor the SVG",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    // deno task produce may write its --timeline only under the project's directory.
    const root = new URL("../", import.meta.url).pathname;
    const svg = await Deno.makeTempFile({ dir: root, prefix: "timeline-test-", suffix: ".svg" });
    try {
      const producer = await scenario.startWaitingProducer(2, 0, 30, scenario.url, {
        args: ["--timeline", svg],
      });
      const at = new Date().toISOString();
      // Tried: this crashed --timeline with a TypeError in escapeXml, exit 1, no SVG.
      scenario.publishEvent("task.started", { type: "task.started", worker: "forger", at });
      scenario.publishEvent("worker.status", {
        type: "worker.status",
        worker: "evil\x1b[2J\nINFO forged line",
        at,
        inHand: "0lots0",
      });
      await scenario.startWorker("honest", ["--time-scale", "0"]);
      const status = await producer.exit(30_000);
      assert.equal(status.code, 0, producer.output());
      const text = await Deno.readTextFile(svg);
      assert.match(text, /^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/m);
      const output = producer.lines.join("\n");
      assert.ok(!output.includes("\x1b"), "no raw escape reaches the terminal");
      assert.doesNotMatch(output, /^INFO forged/m);
    } finally {
      await Deno.remove(svg);
    }
    scenario.pass();
  },
});

Deno.test({
  name: "produce --wait deletes its watch queue when it exits",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    await scenario.startWorker("quick", ["--time-scale", "0"]);
    const result = await run("produce", ["--queue", scenario.queue, "--count", "2", "--wait"], {
      AMQP_URL: scenario.url,
      LOG_LEVEL: "debug",
    });
    assert.equal(result.code, 0, result.stderr);
    const name = / through (\S+\.watch\.[0-9a-f-]+)/.exec(result.stderr)?.[1];
    assert.ok(name, `the watch queue is named in the debug log:\n${result.stderr}`);
    // Tried: each --wait left a durable queue that kept collecting every event for 60 s.
    assert.equal(await scenario.queueExists(name), false, `${name} was deleted`);
    scenario.pass();
  },
});

Deno.test({
  name: "a newline or an ESC in a worker name or a task id cannot forge a log line or reach the " +
    "terminal raw",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    const name = "evil\x1b[31m\nname";
    // Tried: these reached text logs, status, the run summary and the timeline unescaped.
    const worker = await scenario.startWorker(name, ["--time-scale", "0"], { LOG_LEVEL: "info" });
    const task = createTask(null, { id: "id\x1b[2J\n12:00:00.000 [INF] forged", seq: 1 });
    const producer = await scenario.startWaitingProducer(1, 0, 30);
    await scenario.publish(task);
    await scenario.waitForEvent(
      (e) => e.type === "task.completed" && "taskId" in e && e.taskId === task.id,
      "the task with a hostile id to complete",
    );
    worker.kill("SIGTERM");
    assert.equal((await worker.exit()).code, 0);
    await producer.exit(30_000);
    for (const child of [worker, producer]) {
      const output = child.lines.join("\n");
      assert.ok(!output.includes("\x1b"), `no raw ESC from ${child.name}`);
      assert.doesNotMatch(output, /^12:00:00\.000 \[INF\] forged/m, `no forged line`);
    }
    assert.match(worker.lines.join("\n"), /Completed task #1 id\\x1b\[2J\\n12:00:00\.000/);
    assert.match(producer.lines.join("\n"), /evil\\x1b\[31m\\nname/, "the summary escapes it");
    scenario.pass();
  },
});

Deno.test({
  name: "a task larger than the broker's max_message_size is refused in one line, and the " +
    "producer does not publish it again forever",
  // Needs a private node configured with a small max_message_size (CI installs rabbitmq-server).
  ignore: !await canStartPrivateNode(),
  ...options,
  async fn() {
    await using node = await startPrivateNode({ config: "max_message_size = 65536" });
    const queue = freshQueue("oversized");
    // Tried: a publish over the limit closes the channel with a 406; the producer reconnected
    // and published it again, forever.
    const lines = ['{"n":1}', JSON.stringify({ blob: "x".repeat(100_000) }), '{"n":3}'];
    const result = await run("produce", ["--queue", queue, "--stdin"], {
      AMQP_URL: node.url,
      LOG_LEVEL: "error",
    }, lines.join("\n") + "\n");
    assert.equal(result.code, 1, result.stderr);
    const stderr = result.stderr.trim().split("\n");
    assert.equal(stderr.length, 1, result.stderr);
    assert.match(
      stderr[0]!,
      /^producer: The broker refused task #2 \S+: its \d+ bytes exceed the broker's max_message_size of 65536$/,
    );
  },
});
