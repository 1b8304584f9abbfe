import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { ChannelModel } from "../lib/deps/amqplib.ts";
import { withConfirmChannel } from "../lib/core/broker_errors.ts";
import { openConnection } from "../lib/core/connection.ts";
import { writeInPasses } from "../lib/core/corking.ts";
import { brokerUrl } from "../testing/scenario.ts";

/** Publishes in the burst: each a chunk of its own in amqplib (method, header and body frames). */
const PUBLISHES = 1_000;

/**
 * Counts the writes that reach the socket under amqplib's multiplexer: `_write` (one chunk) and
 * `_writev` (the chunks buffered while it was corked), as Node's Writable calls them.
 */
function countSocketWrites(model: ChannelModel): { writes: number; chunks: number } {
  type Socket = {
    _write(...args: unknown[]): unknown;
    _writev(chunks: unknown[], ...args: unknown[]): unknown;
  };
  const connection = model.connection as unknown as { muxer?: { out?: Socket } };
  const socket = connection.muxer?.out;
  assert.ok(socket, "amqplib's multiplexer writes to a socket (connection.muxer.out)");
  const count = { writes: 0, chunks: 0 };
  const write = socket._write;
  const writev = socket._writev;
  socket._write = function (this: Socket, ...args: unknown[]) {
    count.writes++;
    count.chunks++;
    return write.apply(this, args);
  };
  socket._writev = function (this: Socket, chunks: unknown[], ...args: unknown[]) {
    count.writes++;
    count.chunks += chunks.length;
    return writev.call(this, chunks, ...args);
  };
  return count;
}

Deno.test({
  name: "with the pinned amqplib, the corking applies: a burst of publishes goes out in a few " +
    "socket writes, not one each",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    let model: ChannelModel | undefined;
    await using _connection = await openConnection({
      url: await brokerUrl(),
      name: "tareas corking test",
      setup: (connected) => {
        model = connected;
        return Promise.resolve();
      },
    });
    assert.ok(model);
    await withConfirmChannel(model, async (channel) => {
      const { queue } = await channel.assertQueue("", { exclusive: true });
      const count = countSocketWrites(model!);
      for (let i = 0; i < PUBLISHES; i++) channel.sendToQueue(queue, Buffer.from(`${i}`));
      await channel.waitForConfirms();
      assert.ok(count.chunks >= PUBLISHES, `every publish was written: ${count.chunks} chunks`);
      // Measured: 2 writes with the corking, 1,000 without it.
      assert.ok(
        count.writes <= PUBLISHES / 10,
        `${PUBLISHES} publishes took ${count.writes} socket writes: openConnection's corking ` +
          "no longer applies to amqplib's multiplexer",
      );
      await channel.deleteQueue(queue);
    });
    assert.equal(writeInPasses(model), true, "it knows amqplib's internals (and is idempotent)");
  },
});
