/**
 * The floor's publisher: publishes N persistent messages (JSON bodies shaped like tareas tasks,
 * complexity 0) to a queue through a confirm channel, honouring back-pressure, then `--stops`
 * end-of-run messages, and exits 0 once the broker has confirmed them all.
 *
 * Prints `bench publishing <epoch ms> <CPU ticks>` just before the first publish and
 * `bench confirmed <epoch ms>` once all are confirmed.
 *
 * `deno run --allow-all bench/_floor_publisher.ts --queue Q --count N [--stops K]`
 * @module
 */
import { parseArgs } from "node:util";
import { once } from "node:events";
import { Buffer } from "node:buffer";
import amqp from "../lib/deps/amqplib.ts";
import { STOP_HEADER } from "./_bare_consumer.ts";
import { publishingLine } from "./_procfs.ts";
import { amqpUrl, nowMs } from "./_util.ts";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      queue: { type: "string" },
      count: { type: "string" },
      stops: { type: "string", default: "0" },
    },
  });
  const queue = values.queue;
  const count = Number(values.count);
  const stops = Number(values.stops);
  if (!queue || !Number.isInteger(count) || count < 0 || !Number.isInteger(stops) || stops < 0) {
    console.error("Usage: _floor_publisher.ts --queue Q --count N [--stops K]");
    Deno.exit(2);
  }
  const connection = await amqp.connect(amqpUrl(), { noDelay: true });
  const channel = await connection.createConfirmChannel();
  console.log(publishingLine(nowMs()));
  for (let seq = 1; seq <= count + stops; seq++) {
    const id = crypto.randomUUID();
    const stop = seq > count;
    const body = Buffer.from(
      JSON.stringify({ id, seq, complexity: 0, createdAt: new Date().toISOString() }),
    );
    const fits = channel.sendToQueue(queue, body, {
      persistent: true,
      messageId: id,
      contentType: "application/json",
      ...(stop ? { headers: { [STOP_HEADER]: true } } : {}),
    });
    if (!fits) await once(channel, "drain");
  }
  await channel.waitForConfirms();
  console.log(`bench confirmed ${nowMs()}`);
  await connection.close();
}

if (import.meta.main) {
  await main();
}
