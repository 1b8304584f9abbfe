/**
 * `deno task produce`: the producer's command line over the library (`lib/producer.ts`): random
 * tasks of the original story or JSON Lines from standard input, and with `--wait` the run
 * watched to its end (`lib/run_wait.ts`). Run `deno task produce --help` for flags.
 * @module
 */
import { runMain } from "./lib/cli.ts";
import { parseProducerArgs, PRODUCER_HELP, type ProducerConfig } from "./lib/config.ts";
import { UsageError } from "./lib/errors.ts";
import { log } from "./lib/log.ts";
import { createProducer, type Producer } from "./lib/producer.ts";
import { RunRecord } from "./lib/run_record.ts";
import { waitForRun } from "./lib/run_wait.ts";
import { randomComplexity } from "./lib/task.ts";
import { printable } from "./lib/text.ts";
import { watchEvents } from "./lib/watch.ts";

/** Tasks handed to the library at once: bounds the memory of a large run. */
const CHUNK = 10_000;

/** Publishes the tasks, and with `--wait` watches them finish; resolves with the exit code. */
async function produce(config: ProducerConfig): Promise<number> {
  const logger = log("producer");
  if (config.timeline !== undefined) await checkWritable(config.timeline);
  const { url, queue, heartbeat } = config;
  const record = config.wait ? new RunRecord([]) : undefined;
  // Subscribed before the first publish, so no event of the run can be missed.
  await using watch = record
    ? await watchEvents({ url, queue, heartbeat, onEvent: (event) => record.record(event) })
    : undefined;
  await using producer = await createProducer({ url, queue, heartbeat, awaited: config.wait });
  logger.info("Publishing {count} task(s) to {queue}", {
    count: config.stdin ? "standard input's" : config.count,
    queue,
  });
  const started = performance.now();
  const count = config.stdin
    ? await publishLines(producer, record)
    : await publishRandom(producer, config, record);
  logger.info("Published {count} task(s) to {queue}, all confirmed by the broker in {ms} ms", {
    count,
    queue,
    ms: Math.round(performance.now() - started),
  });
  if (watch === undefined || record === undefined) return 0;
  return await waitForRun(record, watch, {
    queue,
    timeoutMs: config.timeoutMs,
    timeline: config.timeline,
  });
}

/**
 * Publishes one chunk of tasks. Their ids are chosen, and added to the run's record, before
 * they are published: a task can complete before its confirm comes back.
 */
async function publishChunk(
  producer: Producer,
  payloads: unknown[],
  record: RunRecord | undefined,
  first: number,
  complexity = () => 0,
): Promise<void> {
  const ids = payloads.map(() => crypto.randomUUID());
  record?.expect(ids);
  await producer.enqueueMany(payloads, {
    options: (_, i) => ({ id: ids[i]!, seq: first + i + 1, complexity: complexity() }),
  });
}

/** The original story: `--count` tasks with a random complexity each, and no payload. */
async function publishRandom(
  producer: Producer,
  config: ProducerConfig,
  record: RunRecord | undefined,
): Promise<number> {
  for (let first = 0; first < config.count; first += CHUNK) {
    const payloads = new Array(Math.min(CHUNK, config.count - first)).fill(null);
    await publishChunk(producer, payloads, record, first, () => {
      return randomComplexity(config.min, config.max);
    });
  }
  return config.count;
}

/**
 * One task per line of standard input, the line's JSON value being its payload, published as
 * the lines come (`tail -f jobs.jsonl | deno task produce --stdin` works).
 */
async function publishLines(producer: Producer, record: RunRecord | undefined): Promise<number> {
  const confirms = new Set<Promise<unknown>>();
  let failure: unknown;
  let published = 0;
  let number = 0;
  const settle = async () => {
    await Promise.all(confirms);
    if (failure !== undefined) throw failure;
  };
  for await (const line of lines(Deno.stdin.readable)) {
    number++;
    if (line.trim() === "") continue;
    let payload: unknown;
    try {
      payload = JSON.parse(line);
    } catch (error) {
      await settle();
      throw new UsageError(
        `Line ${number} of standard input is not JSON (${(error as Error).message}); ` +
          `${published} task(s) before it were published and confirmed`,
      );
    }
    // The id is known to the record before the task is published: it may complete at once.
    const id = crypto.randomUUID();
    record?.expect([id]);
    const confirm: Promise<unknown> = producer.enqueue(payload, { id, seq: ++published }).then(
      () => confirms.delete(confirm),
      (error) => failure ??= error,
    );
    confirms.add(confirm);
    if (confirms.size >= CHUNK) await Promise.race(confirms);
  }
  await settle();
  return published;
}

/**
 * Fails before anything is published when the timeline could not be written: `deno task produce`
 * may only write in the project's directory.
 */
async function checkWritable(file: string): Promise<void> {
  const { state } = await Deno.permissions.query({ name: "write", path: file });
  if (state !== "granted") {
    throw new UsageError(
      `Cannot write --timeline ${printable(file)}: deno task produce may only write in the ` +
        "project's directory; give a file there, or run deno run --allow-write producer.ts",
    );
  }
}

/** The lines of a byte stream, decoded as UTF-8. */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let rest = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + text).split("\n");
    rest = parts.pop()!;
    yield* parts;
  }
  if (rest !== "") yield rest;
}

if (import.meta.main) {
  await runMain("producer", {
    parse: () => parseProducerArgs(Deno.args),
    help: PRODUCER_HELP,
    run: produce,
  });
}
