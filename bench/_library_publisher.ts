/**
 * The library's publish path for the publish scenario: `createProducer` from `lib/producer.ts`,
 * then one `enqueueMany` of N no-op tasks. Prints `bench publishing <epoch ms> <CPU ticks>` just before the
 * call and `bench confirmed <epoch ms>` once it has resolved (every task confirmed), as the floor's
 * publisher does.
 *
 * While `lib/producer.ts` has no `createProducer`, prints `bench unavailable <why>` and exits 3:
 * the benchmark then notes the measurement as not taken.
 *
 * `deno run --allow-all bench/_library_publisher.ts --queue Q --count N`
 * @module
 */
import { parseArgs } from "node:util";
import { publishingLine } from "./_procfs.ts";
import { amqpUrl, nowMs } from "./_util.ts";

/** The part of the library's producer this script uses. */
interface LibraryProducer {
  enqueueMany(tasks: unknown[]): Promise<unknown>;
  close(): Promise<void>;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { queue: { type: "string" }, count: { type: "string" } },
  });
  const queue = values.queue;
  const count = Number(values.count);
  if (!queue || !Number.isInteger(count) || count < 0) {
    console.error("Usage: _library_publisher.ts --queue Q --count N");
    Deno.exit(2);
  }
  // A computed specifier: `deno check` must not require a module that does not exist yet.
  const specifier = new URL("../lib/producer.ts", import.meta.url).href;
  let library: Record<string, unknown>;
  try {
    library = await import(specifier);
  } catch (error) {
    const why = error instanceof Error ? error.message.split("\n")[0] : String(error);
    console.log(`bench unavailable lib/producer.ts cannot be imported: ${why}`);
    Deno.exit(3);
  }
  if (typeof library.createProducer !== "function") {
    console.log("bench unavailable lib/producer.ts exports no createProducer yet");
    Deno.exit(3);
  }
  // TODO(lead): match createProducer's options and enqueueMany's task shape once lib/producer.ts
  // exists; this is a guess at `createProducer({ url, queue })` and tasks of complexity 0.
  const createProducer = library.createProducer as (
    options: Record<string, unknown>,
  ) => Promise<LibraryProducer>;
  const producer = await createProducer({ url: amqpUrl(), queue });
  try {
    const tasks = Array.from({ length: count }, () => ({ complexity: 0 }));
    console.log(publishingLine(nowMs()));
    await producer.enqueueMany(tasks);
    console.log(`bench confirmed ${nowMs()}`);
  } finally {
    await producer.close();
  }
}

if (import.meta.main) {
  await main();
}
