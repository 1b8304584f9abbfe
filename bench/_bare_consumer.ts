/**
 * The floor's consumer, and the bare script that start-up and memory are compared against: a
 * plain Deno + amqplib process (with `noDelay`, as our worker's connection has) that connects,
 * declares the work queue with tareas' arguments, consumes it with prefetch P, acks each message,
 * and prints `bench ready <epoch ms>` once the consumer is registered.
 *
 * - `--paused`: prints `bench ready` once connected, then waits for `SIGUSR1` before consuming
 *   (to drain a queue filled beforehand).
 * - `--ack batched`: instead of one ack per message, acks every delivery received so far with one
 *   `ack(message, true)` once the messages of one socket read have been handled (or every P/2
 *   messages): the floor of a worker that acks contiguous finished deliveries together.
 *
 * A message with header `x-bench-stop` ends the run: it acks that message, prints
 * `bench done <messages acked> <epoch ms of the first delivery> <epoch ms of the last ack>`, and
 * closes its connection, which returns any further stop messages it had prefetched to the queue
 * for the other consumers; it then waits for `SIGTERM` before exiting, so that the benchmark can
 * still read its CPU time from `/proc`.
 *
 * `deno run --allow-all bench/_bare_consumer.ts --queue Q [--prefetch 1] [--paused] [--ack each|batched]`
 * @module
 */
import { parseArgs } from "node:util";
import amqp from "../lib/deps/amqplib.ts";
import type { ConsumeMessage } from "../lib/deps/amqplib.ts";
import { workQueueArguments } from "../lib/core/topology.ts";
import { amqpUrl, nowMs } from "./_util.ts";

/** Header that marks the end-of-run messages. */
export const STOP_HEADER = "x-bench-stop";

const USAGE =
  "Usage: _bare_consumer.ts --queue Q [--prefetch P ≥ 1] [--paused] [--ack each|batched]";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      queue: { type: "string" },
      prefetch: { type: "string", default: "1" },
      paused: { type: "boolean", default: false },
      ack: { type: "string", default: "each" },
    },
  });
  const queue = values.queue;
  const prefetch = Number(values.prefetch);
  const batched = values.ack === "batched";
  if (
    !queue || !Number.isInteger(prefetch) || prefetch < 1 ||
    (values.ack !== "each" && !batched)
  ) {
    console.error(USAGE);
    Deno.exit(2);
  }
  // noDelay as in lib/connection.ts: without it Nagle holds back small frames such as acks.
  const connection = await amqp.connect(amqpUrl(), { noDelay: true });
  const channel = await connection.createChannel();
  await channel.assertQueue(queue, { durable: true, arguments: workQueueArguments(queue) });
  await channel.prefetch(prefetch);
  let acked = 0;
  let firstDelivery = 0;
  let lastAck = 0;
  let stopping = false;
  const { promise: stopped, resolve } = Promise.withResolvers<void>();
  const stop = () => {
    stopping = true;
    resolve();
  };
  const { promise: terminated, resolve: terminate } = Promise.withResolvers<void>();
  let unacked: ConsumeMessage | undefined;
  let pending = 0; // real (not stop) messages received since the last ack
  let flushScheduled = false;
  const batch = Math.max(1, Math.floor(prefetch / 2));
  const flush = () => {
    flushScheduled = false;
    if (unacked === undefined) return;
    channel.ack(unacked, true);
    if (pending > 0) lastAck = nowMs();
    unacked = undefined;
    pending = 0;
  };
  const onMessage = (message: ConsumeMessage | null) => {
    if (message === null) return stop();
    if (stopping) return; // left unacked: the close returns it to the queue
    const isStop = Boolean(message.properties.headers?.[STOP_HEADER]);
    if (!isStop) {
      if (acked === 0) firstDelivery = nowMs();
      acked++;
    }
    if (batched) {
      unacked = message;
      if (!isStop) pending++;
      if (pending >= batch || isStop) flush();
      else if (!flushScheduled) {
        flushScheduled = true;
        setTimeout(flush, 0); // after the rest of this socket read has been handled
      }
    } else {
      channel.ack(message);
      if (!isStop) lastAck = nowMs();
    }
    if (isStop) stop();
  };
  const consume = () => channel.consume(queue, onMessage, { noAck: false });
  Deno.addSignalListener("SIGTERM", () => {
    stop();
    terminate();
  });
  if (values.paused) {
    const { promise: go, resolve: start } = Promise.withResolvers<void>();
    Deno.addSignalListener("SIGUSR1", () => start());
    console.log(`bench ready ${nowMs()}`);
    await go;
    await consume();
  } else {
    await consume();
    console.log(`bench ready ${nowMs()}`);
  }
  await stopped;
  console.log(`bench done ${acked} ${firstDelivery} ${lastAck}`);
  await connection.close();
  await terminated;
  Deno.exit(0);
}

if (import.meta.main) {
  await main();
}
