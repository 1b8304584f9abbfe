/**
 * The floor's responder of the call scenario: a plain Deno + amqplib request/reply server doing
 * what our worker does for a `call`, and nothing else. It consumes the request queue (declared
 * beforehand with our work queue's arguments) with prefetch P on one channel; for each request it
 * publishes a persistent reply (`{"status":"completed","result":{"ok":true}}`, `correlation_id` =
 * the request's) to the queue the request names in `reply_to` through a confirm channel, and acks
 * the request once the broker has confirmed the reply. Prints `bench ready <epoch ms>` once it
 * consumes; SIGTERM closes it.
 *
 * `deno run --allow-all bench/_bare_responder.ts --queue Q [--prefetch P]`
 * @module
 */
import { parseArgs } from "node:util";
import { Buffer } from "node:buffer";
import amqp from "../lib/deps/amqplib.ts";
import { CALL_RESULT } from "./_result_handler.ts";
import { amqpUrl, nowMs } from "./_util.ts";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { queue: { type: "string" }, prefetch: { type: "string", default: "1" } },
  });
  const queue = values.queue;
  const prefetch = Number(values.prefetch);
  if (!queue || !Number.isInteger(prefetch) || prefetch < 1) {
    console.error("Usage: _bare_responder.ts --queue Q [--prefetch P ≥ 1]");
    Deno.exit(2);
  }
  // noDelay as in lib/core/connection.ts: without it Nagle holds back small frames.
  const connection = await amqp.connect(amqpUrl(), { noDelay: true });
  const publish = await connection.createConfirmChannel();
  const consume = await connection.createChannel();
  await consume.prefetch(prefetch);
  const body = Buffer.from(JSON.stringify({ status: "completed", result: CALL_RESULT }));
  await consume.consume(queue, (message) => {
    if (message === null) return;
    const { replyTo, correlationId } = message.properties;
    publish.sendToQueue(replyTo, body, {
      persistent: true,
      correlationId,
      type: "tareas.result",
      contentType: "application/json",
    }, (error) => {
      if (error) consume.nack(message);
      else consume.ack(message);
    });
  }, { noAck: false });
  console.log(`bench ready ${nowMs()}`);
  const { promise: stopped, resolve: stop } = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGTERM", stop);
  await stopped;
  await connection.close();
  Deno.exit(0);
}

if (import.meta.main) {
  await main();
}
