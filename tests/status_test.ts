import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import amqp from "../lib/deps/amqplib.ts";
import type { StatusSnapshot } from "../tools/status.ts";
import { canStartPrivateNode, startPrivateNode } from "../lib/operate/local_broker.ts";
import { Child, freshQueue, run, Scenario } from "../testing/scenario.ts";
import { eventsExchange } from "../lib/core/events.ts";
import { declareTopology } from "../lib/core/topology.ts";

Deno.test({
  name: "status --json reports ready, unacked, consumers, dead-lettered and the workers",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using scenario = await Scenario.open();
    await scenario.startWorker("busy", ["--concurrency", "2", "--time-scale", "100"]);
    await scenario.produce(["--count", "5"]);
    for (const n of [1, 2]) {
      await scenario.waitForEvent(
        () => scenario.events.filter((e) => e.type === "task.started").length >= n,
        `task ${n} of 2 to start`,
      );
    }
    const result = await run("status", ["--json", "--queue", scenario.queue], {
      AMQP_URL: scenario.url,
    });
    assert.equal(result.code, 0, result.stderr);
    const snapshot: StatusSnapshot = JSON.parse(result.stdout);
    assert.equal(snapshot.ready, 3);
    assert.equal(snapshot.unacked, 2);
    assert.equal(snapshot.consumers, 1);
    assert.equal(snapshot.dead, 0);
    assert.equal(snapshot.workers.length, 1);
    assert.deepEqual(
      { ...snapshot.workers[0], lastSeen: "" },
      {
        name: "busy",
        state: "online",
        lastSeen: "",
        inHand: 2,
        completed: 0,
        failed: 0,
        node: new URL(scenario.url).host,
        // Both tasks started before it listened: a snapshot lists the running tasks it heard of.
        running: [],
      },
    );
    scenario.pass();
  },
});

Deno.test({
  name: "status of a queue that does not exist is one line and exit 2",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const scenario = await Scenario.open();
    await scenario[Symbol.asyncDispose]();
    const result = await run("status", ["--queue", scenario.queue], {
      AMQP_URL: scenario.url,
    });
    assert.equal(result.code, 2);
    assert.equal(
      result.stderr.trim(),
      `status: Queue "${scenario.queue}" does not exist: nothing has declared it yet`,
    );
  },
});

Deno.test({
  name: "status of a mistyped queue declares nothing: no events exchange is left behind",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using scenario = await Scenario.open();
    const mistyped = freshQueue("mistyped");
    const result = await run("status", ["--queue", mistyped], { AMQP_URL: scenario.url });
    assert.equal(result.code, 2, result.stderr);
    const connection = await amqp.connect(scenario.url);
    const channel = await connection.createChannel();
    channel.on("error", () => {});
    const found = await channel.checkExchange(eventsExchange(mistyped)).then(
      () => true,
      () => false,
    );
    await connection.close();
    if (found) {
      await scenario.channel.deleteExchange(eventsExchange(mistyped));
      assert.fail(`status declared the exchange ${eventsExchange(mistyped)}`);
    }
    scenario.pass();
  },
});

Deno.test({
  name: "a snapshot stops listening once every consumer has reported, and at once with none",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using scenario = await Scenario.open();
    await scenario.produce(["--count", "2"]);
    const idle = await run("status", ["--json", "--queue", scenario.queue], {
      AMQP_URL: scenario.url,
      LOG_LEVEL: "debug",
    });
    assert.equal(idle.code, 0, idle.stderr);
    assert.equal(JSON.parse(idle.stdout).ready, 2);
    assert.match(idle.stderr, /Snapshot after listening 0 ms: 0 of 0 consumers reported/);

    await scenario.startWorker("w1", ["--time-scale", "100"]);
    await scenario.startWorker("w2", ["--time-scale", "100"]);
    const busy = await run("status", ["--json", "--queue", scenario.queue], {
      AMQP_URL: scenario.url,
      LOG_LEVEL: "debug",
    });
    assert.equal(busy.code, 0, busy.stderr);
    assert.match(busy.stderr, /Snapshot after listening \d+ ms: 2 of 2 consumers reported/);
    const snapshot: StatusSnapshot = JSON.parse(busy.stdout);
    assert.deepEqual(snapshot.workers.map((w) => w.name).sort(), ["w1", "w2"]);
    assert.equal(snapshot.unacked, 2);
    scenario.pass();
  },
});

Deno.test({
  name: "status --watch without a terminal prints plain snapshots, and a killed worker as lost",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using scenario = await Scenario.open();
    const victim = await scenario.startWorker("victim", ["--time-scale", "100"]);
    await scenario.startWorker("survivor", ["--time-scale", "100"]);
    await using status = new Child("status", "status", [
      "--watch",
      "--queue",
      scenario.queue,
    ], { AMQP_URL: scenario.url, LOG_LEVEL: "warning" });
    await status.waitForLine(/^\s+victim\s+online/);
    victim.kill("SIGKILL");
    await victim.status;
    const lost = await status.waitForLine(/^\s+victim\s+lost/, 30_000);
    assert.match(lost, /\(\d+ s ago\)$/, "a lost worker shows when it was last seen");
    assert.ok(
      status.lines.every((line) => !line.includes("\x1b")),
      "no terminal escapes when stdout is not a terminal",
    );
    assert.ok(status.lines.includes(""), "snapshots are separated by a blank line");
    scenario.pass();
  },
});

Deno.test({
  name: "status of a classic queue made by the original scripts names the problem and the fix",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using scenario = await Scenario.open();
    const queue = freshQueue("python");
    // What the original pika scripts do: a classic durable queue, persistent messages.
    await scenario.channel.assertQueue(queue, { durable: true });
    try {
      for (let i = 0; i < 3; i++) {
        scenario.channel.sendToQueue(queue, Buffer.from(`tarea ${i}`), { persistent: true });
      }
      await scenario.channel.checkQueue(queue); // a round trip: the three are in
      const result = await run("status", ["--queue", queue], { AMQP_URL: scenario.url });
      assert.equal(result.code, 2, result.stderr);
      const line = result.stderr.trim();
      assert.equal(line.split("\n").length, 1, line);
      assert.match(line, /was not set up by tareas/);
      assert.match(line, /classic queue/);
      assert.match(line, /3 messages/);
      assert.match(line, new RegExp(`deno task migrate --queue ${queue}`));
      assert.doesNotMatch(line, /\.dead" does not exist/);
    } finally {
      await scenario.channel.deleteQueue(queue);
    }
    scenario.pass();
  },
});

Deno.test({
  name: "status --watch escapes names from events and never prints junk fields",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using scenario = await Scenario.open();
    await declareTopology(scenario.channel, scenario.queue);
    await using status = new Child("status", "status", [
      "--watch",
      "--queue",
      scenario.queue,
    ], { AMQP_URL: scenario.url, LOG_LEVEL: "warning" });
    await status.waitForLine(/no worker seen/);
    const forged = "evil\x1b[2J\nforged";
    const junk = [
      { type: "worker.status", worker: forged, at: new Date().toISOString(), inHand: 1 },
      {
        type: "worker.status",
        worker: "junk",
        at: new Date().toISOString(),
        inHand: "lots",
        completed: { n: 1 },
        lastMinute: "x",
      },
    ];
    const seen = status.waitForLine(/evil\\x1b\[2J\\nforged/, 20_000);
    // Publish until status shows it (it subscribes before its first snapshot, but keep it simple).
    const timer = setInterval(() => {
      for (const event of junk) {
        scenario.channel.publish(
          eventsExchange(scenario.queue),
          event.type,
          Buffer.from(JSON.stringify(event)),
        );
      }
    }, 200);
    try {
      await seen;
    } finally {
      clearInterval(timer);
    }
    const output = status.lines.join("\n");
    assert.doesNotMatch(output, /lots|object Object|NaN|null/);
    assert.ok(!output.includes("\x1b"), "the ESC of the worker name is escaped");
    assert.ok(!status.lines.some((line) => line.startsWith("forged")), "no forged line");
    scenario.pass();
  },
});

Deno.test({
  name: "a user without rights on server-named queues is told which permission is missing",
  sanitizeOps: true,
  sanitizeResources: true,
  ignore: !await canStartPrivateNode(),
  async fn() {
    await using node = await startPrivateNode();
    await node.rabbitmqctl(["add_user", "watcher", "watcher-pass"]);
    // May read everything, configure and write nothing: enough for passive declares only.
    await node.rabbitmqctl(["set_permissions", "-p", "/", "watcher", "^$", "^$", ".*"]);
    const queue = freshQueue("perm");
    const connection = await amqp.connect(node.url);
    try {
      const channel = await connection.createChannel();
      await declareTopology(channel, queue);
      const url = node.url.replace("guest:guest", "watcher:watcher-pass");
      const result = await run("status", ["--queue", queue], { AMQP_URL: url });
      assert.equal(result.code, 2, result.stderr);
      const line = result.stderr.trim();
      assert.equal(line.split("\n").length, 1, line);
      assert.doesNotMatch(line, /refused the credentials/);
      assert.match(line, /User "watcher" may not use queue "amq\.gen-/);
      assert.match(line, /configure, write and read permissions on server-named queues/);
    } finally {
      await connection.close();
    }
  },
});
