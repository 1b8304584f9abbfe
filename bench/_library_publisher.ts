/**
 * The library's publish path, for the publish and throughput scenarios: `createProducer` from
 * `lib/producer.ts`, then one `enqueueMany` of N no-op tasks, then K tasks `{"stop": true}` (see
 * `_done_handler.ts`). Prints `bench publishing <epoch ms> <CPU ticks>` just before the call and
 * `bench confirmed <epoch ms>` once it has resolved (every task confirmed), as the floor's
 * publisher does.
 *
 * `deno run --allow-all bench/_library_publisher.ts --queue Q --count N [--stops K]`
 * @module
 */
import { parseArgs } from "node:util";
import { createProducer } from "../lib/core/producer/mod.ts";
import { publishingLine } from "./_procfs.ts";
import { amqpUrl, nowMs } from "./_util.ts";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { queue: { type: "string" }, count: { type: "string" }, stops: { type: "string" } },
  });
  const queue = values.queue;
  const count = Number(values.count);
  const stops = Number(values.stops ?? 0);
  if (!queue || !Number.isInteger(count) || count < 0 || !Number.isInteger(stops) || stops < 0) {
    console.error("Usage: _library_publisher.ts --queue Q --count N [--stops K]");
    Deno.exit(2);
  }
  await using producer = await createProducer({ url: amqpUrl(), queue });
  console.log(publishingLine(nowMs()));
  await producer.enqueueMany(new Array(count).fill(null));
  await producer.enqueueMany(new Array(stops).fill({ stop: true }));
  console.log(`bench confirmed ${nowMs()}`);
}

if (import.meta.main) {
  await main();
}
