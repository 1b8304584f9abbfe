import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { run, Scenario } from "../testing/scenario.ts";
import { createTask, encodeTask } from "../lib/task.ts";
import { deadQueue, declareTopology } from "../lib/topology.ts";
import type { TaskEvent } from "../lib/events.ts";

Deno.test({
  name: "deno task dead round trip: 3 dead tasks listed, requeued, completed, none left",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t) {
    await using scenario = await Scenario.open();
    const env = { AMQP_URL: scenario.url };
    const dead = () => run("tools/dead.ts", ["--queue", scenario.queue, "--list"], env);
    let ids: string[] = [];
    await scenario.step(t, "three tasks time out and are dead-lettered", async () => {
      const slow = await scenario.startWorker("slow", [
        ...["--max-attempts", "1", "--task-timeout", "0.2", "--time-scale", "1"],
      ]);
      await scenario.produce(["--count", "3", "--min", "1", "--max", "1"]);
      await scenario.waitForEvent(
        () => scenario.events.filter((e) => e.type === "task.dead").length >= 3,
        "3 task.dead events",
      );
      ids = scenario.events.filter((e): e is TaskEvent => e.type === "task.dead").map((e) =>
        e.taskId
      );
      slow.kill("SIGTERM");
      await slow.exit();
    });
    await scenario.step(t, "--list shows them with their reason and attempts", async () => {
      const result = await dead();
      assert.equal(result.code, 0, result.stderr);
      const lines = result.stdout.trim().split("\n");
      assert.equal(lines[0], `3 dead letters in ${scenario.queue}.dead`);
      for (const id of ids) {
        const line = lines.find((l) => l.startsWith(id));
        assert.ok(line, `${id} listed:\n${result.stdout}`);
        assert.match(line, /^\S+\s+1\s+\d{4}-\d\d-\d\dT\S+\s+\d+ B\s+Task timed out after 0\.2 s/);
      }
      assert.equal(await scenario.ready(deadQueue(scenario.queue)), 3, "listing kept them all");
    });
    await scenario.step(t, "--requeue-all sends them back and they complete", async () => {
      const result = await run("tools/dead.ts", [
        "--queue",
        scenario.queue,
        "--requeue-all",
      ], env);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /Requeued 3 dead letters to \S+, attempts reset/);
      assert.equal(await scenario.ready(deadQueue(scenario.queue)), 0);
      await scenario.startWorker("fast", ["--time-scale", "0.01"]);
      for (const id of ids) {
        const done = await scenario.waitForEvent<TaskEvent>(
          (e) => e.type === "task.completed" && "taskId" in e && e.taskId === id,
          `requeued task ${id} to complete`,
        );
        assert.equal(done.attempt, 1, "the attempt count was reset");
      }
      assert.equal(await scenario.ready(deadQueue(scenario.queue)), 0, "<queue>.dead is empty");
      const after = await dead();
      assert.equal(after.stdout.trim(), `No dead letters in ${scenario.queue}.dead`);
    });
    scenario.pass();
  },
});

Deno.test({
  name: "listing dead letters keeps every one, in order, headers intact, never given back",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using scenario = await Scenario.open();
    await declareTopology(scenario.channel, scenario.queue);
    const dq = deadQueue(scenario.queue);
    const tasks = [
      createTask(null, { seq: 1, complexity: 1 }),
      createTask(null, { seq: 2, complexity: 1 }),
    ];
    const bodies = [
      encodeTask(tasks[0]!),
      Buffer.from("not json at all"),
      encodeTask(tasks[1]!),
      Buffer.from("<script>alert(1)</script>"),
    ];
    const options = [
      {
        messageId: tasks[0]!.id,
        headers: { "x-tareas-reason": "Boom (after 5 attempts)", "x-tareas-attempts": 5 },
      },
      { headers: { "x-tareas-reason": "Body is not JSON", "x-custom": "kept" } },
      {
        messageId: tasks[1]!.id,
        headers: { "x-first-death-reason": "delivery_limit", "x-first-death-queue": "q" },
      },
      { correlationId: "c-1" },
    ];
    bodies.forEach((body, i) =>
      scenario.channel.sendToQueue(dq, body, { persistent: true, ...options[i] })
    );
    await scenario.channel.checkQueue(dq);
    for (let pass = 0; pass < 2; pass++) {
      const result = await run("tools/dead.ts", ["--queue", scenario.queue, "--list", "--json"], {
        AMQP_URL: scenario.url,
      });
      assert.equal(result.code, 0, result.stderr);
      const listed = JSON.parse(result.stdout);
      assert.deepEqual(listed.map((l: { reason: string }) => l.reason), [
        "Boom (after 5 attempts)",
        "Body is not JSON",
        "Delivered too many times without an ack (the queue's delivery limit) in queue q",
        "Unknown: no reason recorded",
      ]);
      assert.equal(listed[0].id, tasks[0]!.id);
      assert.match(listed[1].id, /^body-[0-9a-f]{16}$/);
      assert.equal(listed[0].attempts, 5);
    }
    const collected = await scenario.collect(dq);
    const messages = await collected.waitFor(4, "the 4 dead letters");
    assert.deepEqual(messages.map((m) => m.content.toString()), bodies.map((b) => b.toString()));
    assert.ok(messages.every((m) => !m.fields.redelivered), "no message was given back");
    assert.ok(messages.every((m) => m.properties.headers?.["x-delivery-count"] === undefined));
    assert.equal(messages[1]!.properties.headers?.["x-custom"], "kept");
    assert.equal(messages[3]!.properties.correlationId, "c-1");
    assert.equal(messages[0]!.properties.messageId, tasks[0]!.id);
    scenario.pass();
  },
});

Deno.test({
  name: "requeue ID sends back only that task, with its attempts and deaths forgotten",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using scenario = await Scenario.open();
    await declareTopology(scenario.channel, scenario.queue);
    const dq = deadQueue(scenario.queue);
    const [kept, requeued] = [
      createTask(null, { seq: 1, complexity: 1 }),
      createTask(null, { seq: 2, complexity: 1 }),
    ];
    for (const task of [kept!, requeued!]) {
      scenario.channel.sendToQueue(dq, encodeTask(task), {
        persistent: true,
        messageId: task.id,
        correlationId: `corr-${task.seq}`,
        headers: {
          "x-tareas-reason": "Boom",
          "x-tareas-attempts": 5,
          "x-tareas-worker": "w",
          "x-tareas-dead-at": new Date().toISOString(),
          "x-first-death-reason": "rejected",
          "x-delivery-count": 3,
          traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        },
      });
    }
    await scenario.channel.checkQueue(dq);
    const result = await run("tools/dead.ts", [
      ...["--queue", scenario.queue, "--requeue", requeued!.id],
    ], { AMQP_URL: scenario.url });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /Requeued 1 dead letter with id/);
    assert.equal(await scenario.ready(dq), 1, "the other dead letter stays");
    const work = await scenario.collect(scenario.queue);
    const [message] = await work.waitFor(1, "the requeued task in the work queue");
    assert.equal(message!.properties.messageId, requeued!.id);
    assert.equal(message!.properties.correlationId, "corr-2");
    assert.deepEqual(message!.properties.headers, {
      traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    });

    const missing = await run("tools/dead.ts", ["--queue", scenario.queue, "--requeue", "nope"], {
      AMQP_URL: scenario.url,
    });
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr.trim(),
      /^dead: No dead letter with id nope in \S+\.dead: see --list$/,
    );
    assert.equal(await scenario.ready(dq), 1, "a requeue that matched nothing keeps everything");
    scenario.pass();
  },
});

Deno.test({
  name: "purge asks first: without a terminal and without --yes it refuses in one line",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using scenario = await Scenario.open();
    await declareTopology(scenario.channel, scenario.queue);
    const dq = deadQueue(scenario.queue);
    scenario.channel.sendToQueue(dq, Buffer.from("junk"), { persistent: true });
    await scenario.channel.checkQueue(dq);
    const env = { AMQP_URL: scenario.url };
    const refused = await run("tools/dead.ts", ["--queue", scenario.queue, "--purge"], env);
    assert.equal(refused.code, 2);
    assert.equal(
      refused.stderr.trim(),
      "dead: Refusing to purge the dead letters without asking: pass --yes",
    );
    assert.equal(await scenario.ready(dq), 1);
    const purged = await run("tools/dead.ts", ["--queue", scenario.queue, "--purge", "--yes"], env);
    assert.equal(purged.code, 0, purged.stderr);
    assert.equal(purged.stdout.trim(), `Deleted 1 dead letter from ${scenario.queue}.dead`);
    assert.equal(await scenario.ready(dq), 0);
    scenario.pass();
  },
});
