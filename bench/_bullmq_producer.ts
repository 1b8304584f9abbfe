/**
 * BullMQ's side of the publish phase: adds N no-op jobs (data shaped like tareas tasks) with
 * `Queue.addBulk` in chunks of 1,000, `removeOnComplete: true`. Prints
 * `bench publishing <epoch ms> <CPU ticks>` before the first add and `bench confirmed <epoch ms>` after the
 * last one returned.
 *
 * `deno run --allow-all bench/_bullmq_producer.ts --queue Q --count N`
 * @module
 */
import { parseArgs } from "node:util";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { publishingLine } from "./_procfs.ts";
import { nowMs, redisUrl } from "./_util.ts";

const CHUNK = 1_000;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { queue: { type: "string" }, count: { type: "string" } },
  });
  const name = values.queue;
  const count = Number(values.count);
  if (!name || !Number.isInteger(count) || count < 0) {
    console.error("Usage: _bullmq_producer.ts --queue Q --count N");
    Deno.exit(2);
  }
  const connection = new Redis(redisUrl());
  const queue = new Queue(name, { connection });
  await queue.waitUntilReady();
  console.log(publishingLine(nowMs()));
  for (let start = 1; start <= count; start += CHUNK) {
    const jobs = [];
    for (let seq = start; seq < Math.min(start + CHUNK, count + 1); seq++) {
      const id = crypto.randomUUID();
      jobs.push({
        name: "task",
        data: { id, seq, complexity: 0, createdAt: new Date().toISOString() },
        opts: { removeOnComplete: true },
      });
    }
    await queue.addBulk(jobs);
  }
  console.log(`bench confirmed ${nowMs()}`);
  await queue.close();
  connection.disconnect();
}

if (import.meta.main) {
  await main();
}
