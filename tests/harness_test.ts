/**
 * Tests of the test harness itself, against a real private RabbitMQ node: lib/broker.ts (find a
 * broker, start/kill/restart a private node) and tests/_proxy.ts (cut and half-open connections).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import amqp, { type ChannelModel } from "../lib/deps/amqplib.ts";
import {
  BrokerUnavailableError,
  canStartPrivateNode,
  findOrStartBroker,
  type PrivateNode,
  processesMentioning,
} from "../lib/operate/local_broker.ts";
import { redactUrl } from "../lib/core/url.ts";
import { within } from "../testing/scenario.ts";
import { startProxy } from "../testing/proxy.ts";

/**
 * Connects with amqplib. An `error` event is always followed by `close`, which carries the same
 * error: the tests look at that, so `error` events are only kept from becoming uncaught.
 */
async function connect(url: string): Promise<ChannelModel> {
  const connection = await within(amqp.connect(url), 10_000, `an AMQP connection to ${url}`);
  connection.on("error", () => {});
  return connection;
}

/** Resolves with the error (if any) when `connection` emits `close`. */
function whenClosed(connection: ChannelModel): Promise<Error | undefined> {
  return new Promise((resolve) => connection.once("close", (error?: Error) => resolve(error)));
}

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name: "findOrStartBroker returns a broker that answers without starting anything",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const { port } = listener.addr as Deno.NetAddr;
    const url = `amqp://someone:secret@127.0.0.1:${port}`;
    // The probe's connection waits in the backlog; closing the listener drops it.
    await using broker = await findOrStartBroker({ url });
    assert.equal(broker.url, url);
    assert.equal(broker.node, undefined);
  },
});

Deno.test({
  name: "findOrStartBroker without a broker or rabbitmq-server fails in one line, password hidden",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const url = `amqp://someone:secret@127.0.0.1:${closedPort()}`;
    const error = await findOrStartBroker({
      url,
      node: { serverPath: "/nonexistent/rabbitmq-server" },
    }).then(() => undefined, (error: unknown) => error);
    assert.ok(error instanceof BrokerUnavailableError, `expected BrokerUnavailableError: ${error}`);
    assert.equal(error.name, "BrokerUnavailableError");
    assert.equal(error.url, redactUrl(url));
    assert.ok(!error.message.includes("secret"), error.message);
    assert.ok(error.message.includes("someone:***@127.0.0.1"), error.message);
    assert.ok(!error.message.includes("\n"), error.message);
    assert.match(error.message, /docker compose up -d rabbitmq/);
  },
});

/** Docker users may have a broker but no local RabbitMQ install to start private nodes from. */
const serverInstalled = await canStartPrivateNode();

Deno.test({
  name: "a private node starts, survives a crash with its confirmed messages, and stops cleanly",
  ignore: !serverInstalled,
  // The node's child process, its pipes, amqplib's sockets and the proxy are all opened and closed
  // within this test, so the sanitizers stay on.
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t) {
    const unreachable = `amqp://guest:guest@127.0.0.1:${closedPort()}`;
    const started = performance.now();
    const broker = await findOrStartBroker({ url: unreachable });
    let node: PrivateNode | undefined;
    try {
      node = broker.node;
      assert.ok(node !== undefined, "findOrStartBroker should start a private node");
      const privateNode = node;
      console.log(
        `private node ${node.name} ready on port ${node.port} in ${
          Math.round(performance.now() - started)
        } ms`,
      );
      assert.equal(broker.url, node.url);
      assert.notEqual(node.port, 5672);
      assert.notEqual(node.distPort, 25672);
      assert.match(node.name, /^tareas-[0-9a-f]+@localhost$/);

      await t.step("it accepts an amqplib connection and rabbitmqctl reaches it", async () => {
        const connection = await connect(privateNode.url);
        try {
          const channel = await connection.createChannel();
          const { queue } = await channel.assertQueue("", { exclusive: true });
          await channel.close();
          assert.match(queue, /^amq\.gen-/);
        } finally {
          await connection.close();
        }
        const status = await privateNode.rabbitmqctl(["status"]);
        assert.match(status, new RegExp(`Status of node ${privateNode.name}`));
      });

      await t.step(
        "confirmed persistent messages in a quorum queue survive kill and restart",
        async () => {
          const queue = `harness-${crypto.randomUUID()}`;
          const sent = Array.from({ length: 10 }, () => crypto.randomUUID());
          const before = await connect(privateNode.url);
          const lost = whenClosed(before);
          const channel = await before.createConfirmChannel();
          channel.on("error", () => {});
          await channel.assertQueue(queue, {
            durable: true,
            arguments: { "x-queue-type": "quorum" },
          });
          for (const messageId of sent) {
            channel.sendToQueue(queue, Buffer.from(messageId), { persistent: true, messageId });
          }
          await within(channel.waitForConfirms(), 10_000, "the publisher confirms");

          await privateNode.kill();
          assert.equal(privateNode.running, false);
          await within(lost, 10_000, "the client connection to close after the node was killed");

          const restarted = performance.now();
          await privateNode.restart();
          console.log(`private node restarted in ${Math.round(performance.now() - restarted)} ms`);
          assert.equal(privateNode.running, true);

          const after = await connect(privateNode.url);
          try {
            const channel = await after.createChannel();
            const received: string[] = [];
            const all = Promise.withResolvers<void>();
            await channel.consume(queue, (message) => {
              if (message === null) return;
              received.push(message.content.toString());
              channel.ack(message);
              if (received.length === sent.length) all.resolve();
            });
            await within(
              all.promise,
              20_000,
              `the ${sent.length} messages confirmed before the crash to arrive from ${queue}`,
            );
            assert.deepEqual(received, sent);
            await channel.deleteQueue(queue);
            await channel.close();
          } finally {
            await after.close();
          }
        },
      );

      await t.step("closeAllConnections closes client connections", async () => {
        const connection = await connect(privateNode.url);
        const closed = whenClosed(connection);
        await privateNode.closeAllConnections();
        const error = await within(
          closed,
          10_000,
          "the connection to close after close_all_connections",
        );
        assert.match(String(error), /CONNECTION_FORCED|test/);
      });

      await t.step(
        "the proxy forwards AMQP, cut() closes the connection, a new one works",
        async () => {
          await using proxy = startProxy({ hostname: "127.0.0.1", port: privateNode.port });
          const viaProxy = `amqp://guest:guest@127.0.0.1:${proxy.port}`;
          const first = await connect(viaProxy);
          const closed = whenClosed(first);
          const channel = await first.createChannel();
          channel.on("error", () => {});
          await channel.assertQueue("", { exclusive: true });
          assert.equal(proxy.connections, 1);
          proxy.cut();
          const error = await within(closed, 10_000, "the proxied connection to close after cut()");
          assert.ok(error !== undefined, "a cut connection closes with an error");
          const second = await connect(viaProxy);
          try {
            const channel = await second.createChannel();
            await channel.assertQueue("", { exclusive: true });
            await channel.close();
          } finally {
            await second.close();
          }
        },
      );

      await t.step(
        "a paused proxy is detected by heartbeats, then resume() forwards again",
        async () => {
          await using proxy = startProxy({ hostname: "127.0.0.1", port: privateNode.port });
          const viaProxy = `amqp://guest:guest@127.0.0.1:${proxy.port}?heartbeat=1`;
          const stalled = await connect(viaProxy);
          const closed = whenClosed(stalled);
          proxy.pause();
          const error = await within(
            closed,
            10_000,
            "the heartbeat to close a half-open connection",
          );
          assert.match(String(error), /[Hh]eartbeat/);
          proxy.resume();
          const fresh = await connect(viaProxy);
          await fresh.close();
        },
      );
    } finally {
      await broker.close();
    }

    await t.step("stop() leaves no process and no data dir behind", async () => {
      assert.ok(node !== undefined);
      assert.equal(await exists(node.dataDir), false, `${node.dataDir} should be removed`);
      assert.deepEqual(await processesMentioning(node.name), []);
      await node.stop(); // Idempotent.
    });
  },
});
