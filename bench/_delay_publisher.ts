/**
 * The publisher of the delays scenario: `createProducer`, one warm-up task (delayed, so that the
 * producer declares the delays' ladder on its connection before the timing starts), then one
 * `enqueueMany` of N tasks, each with `{ delay }` drawn uniformly from 0 to `--max-delay-ms`
 * (whole ms, from a seeded generator, so every run draws the same delays) and the payload
 * `{ "due": <epoch ms when it may run> }` for `bench/_delay_handler.ts`. With `--undelayed` the
 * same N tasks are enqueued without a delay (due: when they were enqueued).
 *
 * Prints `bench publishing <epoch ms> <CPU ticks>` just before the `enqueueMany` call, `bench
 * confirmed <epoch ms>` once it has resolved (every task confirmed), then `bench dues <first due>
 * <last due> <mean ladder queues per task> <most ladder queues of a task>`.
 *
 * `deno run --allow-all bench/_delay_publisher.ts --queue Q --count N --max-delay-ms M [--seed S]
 * [--undelayed]`
 * @module
 */
import { parseArgs } from "node:util";
import { createProducer } from "../lib/core/producer/mod.ts";
import { DELAY_UNIT_MS, delayRoute } from "../lib/core/delays.ts";
import type { DelayPayload } from "./_delay_handler.ts";
import { publishingLine } from "./_procfs.ts";
import { amqpUrl, nowMs } from "./_util.ts";

/** A small seeded generator (mulberry32): uniform numbers in [0, 1). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The ladder's queues a task delayed by `delayMs` passes through: one per 1 bit of its delay in
 * units (each a write to a quorum queue), 0 for no delay.
 */
export function ladderQueues(delayMs: number): number {
  if (delayMs <= 0) return 0;
  return delayRoute(delayMs).routingKey.split(".").filter((bit) => bit === "1").length;
}

const USAGE = "Usage: _delay_publisher.ts --queue Q --count N --max-delay-ms M [--seed S] " +
  "[--undelayed]";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      queue: { type: "string" },
      count: { type: "string" },
      "max-delay-ms": { type: "string" },
      seed: { type: "string", default: "25" },
      undelayed: { type: "boolean", default: false },
    },
  });
  const queue = values.queue;
  const count = Number(values.count);
  const maxDelayMs = Number(values["max-delay-ms"]);
  const seed = Number(values.seed);
  if (
    !queue || !Number.isInteger(count) || count < 1 || !Number.isInteger(maxDelayMs) ||
    maxDelayMs < 0 || !Number.isInteger(seed)
  ) {
    console.error(USAGE);
    Deno.exit(2);
  }
  const random = seeded(seed);
  const delays = values.undelayed
    ? new Array<number>(count).fill(0)
    : Array.from({ length: count }, () => Math.floor(random() * (maxDelayMs + 1)));
  let queues = 0;
  let most = 0;
  for (const delay of delays) {
    const n = ladderQueues(delay);
    queues += n;
    most = Math.max(most, n);
  }
  await using producer = await createProducer({ url: amqpUrl(), queue });
  // Long enough to still be ahead when the producer publishes it, so that it goes to the ladder.
  const warmup = values.undelayed ? {} : { delay: 10 * DELAY_UNIT_MS };
  await producer.enqueue<DelayPayload>({ warmup: true }, warmup);
  let firstDue = Infinity;
  let lastDue = -Infinity;
  // Each payload is made as enqueueMany reads it, just before its delay is taken from the clock.
  function* payloads(): Generator<DelayPayload> {
    for (const delay of delays) {
      const due = nowMs() + delay;
      firstDue = Math.min(firstDue, due);
      lastDue = Math.max(lastDue, due);
      yield { due };
    }
  }
  console.log(publishingLine(nowMs()));
  await producer.enqueueMany(payloads(), {
    options: (_, index) => values.undelayed ? {} : { delay: delays[index]! },
  });
  console.log(`bench confirmed ${nowMs()}`);
  console.log(`bench dues ${firstDue} ${lastDue} ${queues / count} ${most}`);
}

if (import.meta.main) {
  await main();
}
