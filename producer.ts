/**
 * `deno task produce`: the producer's command line over the library (`lib/core/producer/mod.ts`): random
 * tasks of the original story or JSON Lines from standard input, and with `--wait` the run
 * watched to its end (`lib/cli/run_wait.ts`). Run `deno task produce --help` for flags.
 * @module
 */
import { runMain } from "./lib/cli/main.ts";
import { parseProducerArgs, PRODUCER_HELP, type ProducerConfig } from "./lib/cli/config.ts";
import { UsageError } from "./lib/core/errors.ts";
import { log } from "./lib/core/log.ts";
import { createProducer, type Producer } from "./lib/core/producer/mod.ts";
import type { RunRecord } from "./lib/observe/run_record.ts";
import { RunWatch } from "./lib/cli/run_wait.ts";
import { randomComplexity } from "./lib/core/task.ts";
import { printable } from "./lib/core/text.ts";

/** Tasks handed to the library at once: bounds the memory of a large run. */
const CHUNK = 10_000;

/** Publishes the tasks, and with `--wait` watches them finish; resolves with the exit code. */
async function produce(config: ProducerConfig): Promise<number> {
  const logger = log("producer");
  if (config.timeline !== undefined) await checkWritable(config.timeline);
  const { url, queue, heartbeat } = config;
  // Subscribed before the first publish, so no event of the run can be missed.
  await using run = config.wait ? await RunWatch.open({ url, queue, heartbeat }) : undefined;
  await using producer = await createProducer({ url, queue, heartbeat, awaited: config.wait });
  logger.info("Publishing {count} task(s) to {queue}", {
    count: config.stdin ? "standard input's" : config.count,
    queue,
  });
  const started = performance.now();
  const count = config.stdin
    ? await publishLines(producer, run?.record)
    : await publishRandom(producer, config, run?.record);
  logger.info("Published {count} task(s) to {queue}, all confirmed by the broker in {ms} ms", {
    count,
    queue,
    ms: Math.round(performance.now() - started),
  });
  if (run === undefined) return 0;
  return await run.wait({ timeoutMs: config.timeoutMs, timeline: config.timeline });
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
 * Deepest nesting of arrays and objects a line may have. `JSON.parse` takes any depth, but
 * `JSON.stringify` encoding the task recursed and overflowed V8's stack somewhere between 5,000 and
 * 8,000 levels (a line nested 100,000 deep ended in a stack trace). Other parsers stop sooner:
 * Python's `json` at about 1,000 levels, serde_json at 128.
 */
const MAX_DEPTH = 1_000;

/** Decodes a line, refusing bytes that are not UTF-8 rather than changing them into U+FFFD. */
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * One task per line of standard input, the line's JSON value being its payload, published as
 * the lines come (`tail -f jobs.jsonl | deno task produce --stdin` works). A line that is not
 * UTF-8, not JSON or nested deeper than {@linkcode MAX_DEPTH} stops the run, once the tasks before
 * it are confirmed.
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
  const refuse = async (problem: string): Promise<never> => {
    await settle();
    throw new UsageError(
      `Line ${number} of standard input ${problem}; ` +
        `${published} task(s) before it were published and confirmed`,
    );
  };
  for await (let line of lines(Deno.stdin.readable)) {
    number++;
    if (line === undefined) return await refuse("is not UTF-8");
    // A byte order mark may start the input, not a line.
    if (number === 1 && line.startsWith("\ufeff")) line = line.slice(1);
    if (line.trim() === "") continue;
    let payload: unknown;
    try {
      payload = JSON.parse(line);
    } catch (error) {
      // The message quotes the line: escaped, as it may hold anything.
      return await refuse(`is not JSON (${printable((error as Error).message)})`);
    }
    if (nestsDeeper(line, MAX_DEPTH)) return await refuse(`nests deeper than ${MAX_DEPTH} levels`);
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
 * Whether a JSON text (valid) nests arrays and objects deeper than `limit`. A text of at most
 * twice the limit cannot, and is not scanned; strings are skipped with `indexOf`.
 */
function nestsDeeper(json: string, limit: number): boolean {
  if (json.length <= 2 * limit) return false;
  let depth = 0;
  for (let i = 0; i < json.length; i++) {
    const char = json.charCodeAt(i);
    if (char === 0x22) { // '"': on to the quote that ends the string, one not escaped.
      for (;;) {
        i = json.indexOf('"', i + 1);
        let slashes = 0;
        while (json.charCodeAt(i - 1 - slashes) === 0x5c) slashes++;
        if (slashes % 2 === 0) break;
      }
    } else if (char === 0x5b || char === 0x7b) { // "[" or "{"
      if (++depth > limit) return true;
    } else if (char === 0x5d || char === 0x7d) { // "]" or "}"
      depth--;
    }
  }
  return false;
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

/**
 * The lines of a byte stream (without their "\n"), decoded as UTF-8; `undefined` for a line that
 * is not. Linear in the length of a line: the chunks of a long line are kept in a list and joined
 * once (appending each chunk to the text so far and splitting it again made a 40 MB line take 13
 * to 18 s; 0.3 s now).
 */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string | undefined> {
  let pieces: Uint8Array[] = []; // The current line's bytes so far, from earlier chunks.
  for await (const chunk of stream) {
    const first = chunk.indexOf(0x0a);
    if (first === -1) {
      pieces.push(chunk);
      continue;
    }
    yield decode(join(pieces, chunk.subarray(0, first)));
    pieces = [];
    const last = chunk.lastIndexOf(0x0a);
    if (last > first) {
      // The whole lines of a chunk are decoded at once (a decoding per line cost 1.7 µs a line
      // where this costs 1 µs); when they are not all UTF-8, line by line, to find which is not.
      const text = decode(chunk.subarray(first + 1, last));
      if (text !== undefined) {
        yield* text.split("\n");
      } else {
        for (let start = first + 1, end = 0; start <= last; start = end + 1) {
          end = chunk.indexOf(0x0a, start);
          yield decode(chunk.subarray(start, end));
        }
      }
    }
    if (last + 1 < chunk.length) pieces.push(chunk.subarray(last + 1));
  }
  if (pieces.length > 0) yield decode(join(pieces, new Uint8Array()));
}

/** The text of UTF-8 bytes, or `undefined` when they are not UTF-8. */
function decode(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** `pieces` then `last`, in one array (`last` itself when there are no pieces). */
function join(pieces: Uint8Array[], last: Uint8Array): Uint8Array {
  if (pieces.length === 0) return last;
  const all = new Uint8Array(pieces.reduce((sum, piece) => sum + piece.length, last.length));
  let at = 0;
  for (const piece of [...pieces, last]) {
    all.set(piece, at);
    at += piece.length;
  }
  return all;
}

if (import.meta.main) {
  await runMain("producer", {
    parse: () => parseProducerArgs(Deno.args),
    help: PRODUCER_HELP,
    run: produce,
  });
}
