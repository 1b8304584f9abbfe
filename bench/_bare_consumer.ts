/**
 * The floor's consumer, and the bare script that start-up and memory are compared against: a
 * plain Deno + amqplib process (with `noDelay`, as our worker's connection has) that connects,
 * declares the work queue with tareas' arguments, consumes it with prefetch P,
 * acks each message, and prints `bench ready <epoch ms>` once the consumer is registered.
 *
 * A message with header `x-bench-stop` ends it: it acks that message, prints
 * `bench done <messages acked> <epoch ms of the first delivery> <epoch ms of the last ack>`, and
 * closes its connection, which returns
 * any further stop messages it had prefetched to the queue for the other consumers.
 *
 * `deno run --allow-all bench/_bare_consumer.ts --queue Q [--prefetch 1]`
 * @module
 */
import { parseArgs } from "node:util";
import amqp from "amqplib";
import type { ConsumeMessage } from "amqplib";
import { workQueueArguments } from "../lib/topology.ts";
import { amqpUrl, nowMs } from "./_util.ts";

/** Header that marks the end-of-run messages. */
export const STOP_HEADER = "x-bench-stop";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { queue: { type: "string" }, prefetch: { type: "string", default: "1" } },
  });
  const queue = values.queue;
  const prefetch = Number(values.prefetch);
  if (!queue || !Number.isInteger(prefetch) || prefetch < 1) {
    console.error("Usage: _bare_consumer.ts --queue Q [--prefetch P ≥ 1]");
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
  const onMessage = (message: ConsumeMessage | null) => {
    if (message === null) return stop();
    if (stopping) return; // left unacked: the close returns it to the queue
    channel.ack(message);
    if (message.properties.headers?.[STOP_HEADER]) return stop();
    if (acked === 0) firstDelivery = nowMs();
    acked++;
    lastAck = nowMs();
  };
  await channel.consume(queue, onMessage, { noAck: false });
  console.log(`bench ready ${nowMs()}`);
  Deno.addSignalListener("SIGTERM", () => stop());
  await stopped;
  console.log(`bench done ${acked} ${firstDelivery} ${lastAck}`);
  await connection.close();
}

if (import.meta.main) {
  await main();
}
