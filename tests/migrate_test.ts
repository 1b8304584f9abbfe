import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import amqp, { type Channel, type ConsumeMessage, type Options } from "../lib/deps/amqplib.ts";
import { isNotFound, withChannel } from "../lib/core/broker_errors.ts";
import { migratingQueue } from "../lib/operate/migrate.ts";
import { createTask, encodeTask } from "../lib/core/task.ts";
import { declareTopology, workQueueArguments } from "../lib/core/topology.ts";
import { proxyTarget, startProxy, throughProxy } from "../testing/proxy.ts";
import { Child, run, Scenario, within } from "../testing/scenario.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

/** A message as the original scripts' queue may hold it, with the key that identifies it. */
interface Original {
  key: string;
  body: Buffer;
  options: Options.Publish;
}

/**
 * 100 messages: 50 tasks in tareas' format (with message id, content type, timestamp, headers)
 * and 50 in the Python scripts' own format ("Tarea 3 con complejidad 4", persistent, nothing
 * else); half of those carry a content type. Keyed by message id, else by body.
 */
function originals(): Original[] {
  const messages: Original[] = [];
  for (let seq = 1; seq <= 50; seq++) {
    const task = createTask(null, { seq });
    messages.push({
      key: task.id,
      body: encodeTask(task),
      options: {
        persistent: true,
        messageId: task.id,
        contentType: "application/json",
        timestamp: 1_700_000_000 + seq,
        headers: { "x-origin": "migrate-test", seq },
      },
    });
  }
  for (let n = 1; n <= 50; n++) {
    const body = `Tarea ${n} con complejidad ${1 + n % 5}`;
    messages.push({
      key: body,
      body: Buffer.from(body),
      options: { persistent: true, ...(n % 2 ? { contentType: "text/plain" } : {}) },
    });
  }
  return messages;
}

/** Declares `queue` as the original scripts do (classic, durable) and fills it; waits for confirms. */
async function classicQueue(url: string, queue: string, messages: Original[]): Promise<void> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createConfirmChannel();
    await channel.assertQueue(queue, { durable: true });
    for (const message of messages) channel.sendToQueue(queue, message.body, message.options);
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
}

/** Runs `fn` on a connection and channel of its own (a refused declare closes its channel). */
async function onOwnChannel<T>(url: string, fn: (channel: Channel) => Promise<T>): Promise<T> {
  const connection = await amqp.connect(url);
  try {
    return await withChannel(connection, fn);
  } finally {
    await connection.close();
  }
}

/** Messages ready in `queue`, or undefined when it does not exist. */
function count(url: string, queue: string): Promise<number | undefined> {
  return onOwnChannel(
    url,
    (channel) =>
      channel.checkQueue(queue).then(
        (q) => q.messageCount,
        (error: unknown) => isNotFound(error) ? undefined : Promise.reject(error),
      ),
  );
}

/** Asserts that `queue` is tareas' quorum queue (declaring it with its arguments succeeds). */
async function assertTareasQueue(url: string, queue: string): Promise<number> {
  const { messageCount } = await onOwnChannel(url, (channel) =>
    channel.assertQueue(queue, {
      durable: true,
      arguments: workQueueArguments(queue),
    }));
  return messageCount;
}

function assertSameMessage(received: ConsumeMessage, original: Original): void {
  assert.equal(received.content.toString(), original.body.toString(), `body of ${original.key}`);
  const properties = received.properties;
  const expected = original.options;
  assert.equal(properties.deliveryMode, 2, `${original.key} stays persistent`);
  assert.equal(properties.messageId, expected.messageId, `messageId of ${original.key}`);
  assert.equal(properties.contentType, expected.contentType, `contentType of ${original.key}`);
  assert.equal(properties.timestamp, expected.timestamp, `timestamp of ${original.key}`);
  for (const [name, value] of Object.entries(expected.headers ?? {})) {
    assert.equal(properties.headers?.[name], value, `header ${name} of ${original.key}`);
  }
  assert.equal(properties.headers?.["x-delivery-count"], undefined, "no stale delivery count");
}

Deno.test({
  name: "a classic queue of the original scripts becomes tareas' quorum queue with its 100 " +
    "messages, which a worker runs or dead-letters",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const { url, queue } = scenario;
    const messages = originals();
    try {
      await scenario.step(t, "the original scripts' classic queue holds 100 messages", async () => {
        await classicQueue(url, queue, messages);
        assert.equal(await count(url, queue), 100);
      });
      await scenario.step(t, "deno task migrate moves them and says so", async () => {
        const result = await run("migrate", ["--queue", queue], { AMQP_URL: url });
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stderr, "", "nothing on stderr");
        assert.match(result.stdout, /is a classic queue holding 100 message/);
        assert.match(
          result.stdout,
          new RegExp(`Moving 100 message\\(s\\) from "${queue}" to "${queue}\\.migrating"`),
        );
        assert.match(
          result.stdout,
          new RegExp(`Migrated "${queue}" .*: 100 message\\(s\\) moved .* 100 .*; 100 ready`),
        );
      });
      await scenario.step(t, "the queue is quorum with tareas' arguments, 100 in it", async () => {
        assert.equal(await assertTareasQueue(url, queue), 100);
        assert.equal(await count(url, migratingQueue(queue)), undefined, "temporary queue gone");
      });
      await scenario.step(
        t,
        "a worker completes the 50 tasks, dead-letters the 50 others",
        async () => {
          const dead = await scenario.collect();
          await scenario.startWorker("after-migration", ["--time-scale", "0"]);
          await scenario.waitForCompleted(50);
          const tasks = messages.slice(0, 50).map((m) => m.key).sort();
          assert.deepEqual([...new Set(scenario.completions().map((e) => e.taskId))].sort(), tasks);
          assert.ok(scenario.completions().every((e) => e.attempt === 1), "first attempts");
          const deadLettered = await dead.waitFor(50, "50 foreign messages dead-lettered");
          const foreign = messages.slice(50);
          assert.deepEqual(
            deadLettered.map((m) => m.content.toString()).sort(),
            foreign.map((m) => m.key).sort(),
          );
          for (const message of deadLettered) {
            assert.equal(message.properties.headers?.["x-tareas-reason"], "Body is not JSON");
            assertSameMessage(message, foreign.find((m) => m.key === message.content.toString())!);
          }
        },
      );
      await scenario.step(t, "a second run has nothing to migrate", async () => {
        const result = await run("migrate", ["--queue", queue], { AMQP_URL: url });
        assert.equal(result.code, 0, result.stderr);
        assert.match(
          result.stdout,
          new RegExp(`Nothing to migrate: "${queue}" already is tareas'`),
        );
      });
      scenario.pass();
    } finally {
      await onOwnChannel(url, (channel) => channel.deleteQueue(migratingQueue(queue)));
    }
  },
});

Deno.test({
  name: "a migration that dies between a confirm and its ack, moving out then moving back, loses " +
    "nothing on rerun",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const { url, queue } = scenario;
    const messages = originals();
    const temporary = migratingQueue(queue);
    /**
     * Runs `deno task migrate --batch 10` through a proxy at which it dies, as far as the broker
     * can tell, once `moved` messages of a phase are confirmed at their destination and before
     * it acks them at their source: right before its ack of delivery `moved` on the channel that
     * publishes to `to`. Cut off, the migration stops with exit 1.
     */
    const crash = async (to: string, moved: number) => {
      const publishesTo = new Map<number, string>();
      await using proxy = startProxy(proxyTarget(url), {
        dieAt: (command) => {
          if (command.kind === "publish") publishesTo.set(command.channel, command.routingKey);
          const dies = command.kind === "ack" && publishesTo.get(command.channel) === to &&
            command.deliveryTag >= moved;
          return dies ? "before" : undefined;
        },
      });
      const child = new Child(`migrate to ${to}`, "migrate", [
        ...["--queue", queue, "--batch", "10"],
      ], { AMQP_URL: throughProxy(url, proxy.port) });
      scenario.children.push(child);
      const status = await child.exit();
      await within(proxy.died, 1_000, `the migration's death before its ack of ${moved}`);
      assert.equal(status.code, 1, child.output());
      assert.match(
        child.lines.at(-1) ?? "",
        new RegExp(`^migrate: Migration of queue "${queue}" stopped: .*run .* again to resume$`),
        "one line saying what to do",
      );
    };
    try {
      await scenario.step(t, "the original scripts' classic queue holds 100 messages", async () => {
        await classicQueue(url, queue, messages);
      });
      await scenario.step(
        t,
        "dies with 40 confirmed in the temporary queue, 10 of them unacked",
        async () => {
          await crash(temporary, 40);
          assert.equal(await count(url, temporary), 40);
          assert.equal(await count(url, queue), 70, "the 10 not yet acked went back to it");
        },
      );
      await scenario.step(t, "rerun, dies again with 30 moved back", async () => {
        await crash(queue, 30);
        assert.ok((await assertTareasQueue(url, queue)) >= 30, "tareas' queue, messages in it");
        assert.ok((await count(url, temporary))! > 0, "the rest waits in the temporary queue");
      });
      await scenario.step(t, "the third run finishes", async () => {
        const result = await run("migrate", ["--queue", queue], { AMQP_URL: url });
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /Migrated .* \(resumed\)/);
        assert.equal(await count(url, temporary), undefined, "temporary queue gone");
      });
      await scenario.step(
        t,
        "all 100 are in the work queue, with one duplicated batch per death",
        async () => {
          const total = await assertTareasQueue(url, queue);
          const received = await (await scenario.collect(queue)).waitFor(
            total,
            `${total} messages`,
          );
          const byKey = new Map(messages.map((m) => [m.key, m]));
          const seen = new Map<string, number>();
          for (const message of received) {
            const key = message.properties.messageId ?? message.content.toString();
            const original = byKey.get(key);
            assert.ok(original, `unexpected message ${key}`);
            assertSameMessage(message, original);
            seen.set(key, (seen.get(key) ?? 0) + 1);
          }
          assert.equal(seen.size, 100, "every original message is there");
          // Each death left one batch confirmed at its destination and unacked at its source.
          assert.equal(received.length, 120, "10 duplicates per interrupted batch, no more");
        },
      );
      scenario.pass();
    } finally {
      await onOwnChannel(url, (channel) => channel.deleteQueue(temporary));
    }
  },
});

/** Asserts that migrate refused with exit 2 and one line on stderr matching `pattern`. */
function assertRefused(result: { code: number; stderr: string }, pattern: RegExp): void {
  assert.equal(result.code, 2, result.stderr);
  const lines = result.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${result.stderr}`);
  assert.match(lines[0]!, pattern);
}

Deno.test({
  name: "migrate refuses a classic queue with consumers, a queue that is not classic, or one " +
    "another migration holds",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const { url, queue } = scenario;
    const connection = await amqp.connect(url);
    const migrate = (name = queue) => run("migrate", ["--queue", name], { AMQP_URL: url });
    try {
      await scenario.step(t, "a consumer (an old Python worker) on the classic queue", async () => {
        const channel = await connection.createChannel();
        await channel.assertQueue(queue, { durable: true });
        await channel.consume(queue, () => {});
        assertRefused(
          await migrate(),
          new RegExp(`^migrate: Cannot migrate queue "${queue}": 1 consumer\\(s\\) still attached`),
        );
        assert.equal(await count(url, migratingQueue(queue)), undefined, "nothing declared");
        await channel.close();
      });
      await scenario.step(t, "a quorum queue with other arguments", async () => {
        const channel = await connection.createChannel();
        await channel.deleteQueue(queue);
        await channel.assertQueue(queue, {
          durable: true,
          arguments: { "x-queue-type": "quorum" },
        });
        assertRefused(await migrate(), /neither a classic queue nor tareas' work queue \(x-/);
        await channel.close();
      });
      await scenario.step(t, "another migration of it is running (it holds the lock)", async () => {
        const channel = await connection.createChannel();
        const lock = `${migratingQueue(queue)}.lock`;
        const classic = { "x-queue-type": "classic" };
        await channel.assertQueue(lock, { exclusive: true, durable: false, arguments: classic });
        const result = await migrate();
        assert.equal(result.code, 1, result.stderr);
        assert.equal(
          result.stderr.trim(),
          `migrate: Cannot migrate queue "${queue}": another migration of it is running`,
        );
        await channel.deleteQueue(lock);
        await channel.close();
      });
      await scenario.step(t, "a queue that does not exist", async () => {
        const missing = `${queue}-missing`;
        assertRefused(
          await migrate(missing),
          new RegExp(`Cannot migrate queue "${missing}": it does not exist`),
        );
      });
      scenario.pass();
    } finally {
      await connection.close();
    }
  },
});

Deno.test({
  name:
    "declaring the topology over a classic queue names it, its messages and the migrate command",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    const { url, queue } = scenario;
    const messages = originals().slice(0, 3);
    await classicQueue(url, queue, messages);
    const connection = await amqp.connect(url);
    try {
      const error = await withChannel(
        connection,
        (channel) => declareTopology(channel, queue, connection),
      ).catch((e: unknown) => e);
      assert.equal(
        error instanceof Error && error.message,
        `Cannot declare queue "${queue}": it is a classic queue holding 3 messages and tareas ` +
          `needs a quorum queue; turn it into one, keeping its messages, with: ` +
          `deno task migrate --queue ${queue}`,
      );
      assert.equal(await count(url, queue), 3, "the classic queue is untouched");
    } finally {
      await connection.close();
    }
    scenario.pass();
  },
});
