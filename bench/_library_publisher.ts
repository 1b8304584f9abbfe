/**
 * The library's publish path for the publish scenario: `createProducer` from `lib/producer.ts`,
 * then one `enqueueMany` of N no-op tasks. Prints `bench publishing <epoch ms> <CPU ticks>` just before the
 * call and `bench confirmed <epoch ms>` once it has resolved (every task confirmed), as the floor's
 * publisher does.
 *
 * While `lib/producer.ts` does not exist or has no `createProducer`, prints
 * `bench unavailable <why>` and exits 3: the benchmark then notes the measurement as not taken.
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
  const file = new URL("../lib/producer.ts", import.meta.url);
  if (!await exists(file)) {
    console.log("bench unavailable lib/producer.ts does not exist yet");
    Deno.exit(3);
  }
  // A computed specifier: `deno check` must not require a module that does not exist yet. A module
  // that exists but fails to load is an error, reported as such.
  const library: Record<string, unknown> = await import(file.href);
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

async function exists(file: URL): Promise<boolean> {
  try {
    return (await Deno.stat(file)).isFile;
  } catch {
    return false;
  }
}

if (import.meta.main) {
  await main();
}
