/**
 * `deno task produce`: the producer's command line over the library (`lib/producer.ts`): random
 * tasks of the original story or JSON Lines from standard input, and with `--wait` the run
 * watched to its end. Run `deno task produce --help` for flags.
 * @module
 */
import { runMain } from "./lib/cli.ts";
import { parseProducerArgs, PRODUCER_HELP, type ProducerConfig } from "./lib/config.ts";
import { TareasError, UsageError } from "./lib/errors.ts";
import type { TareasEvent } from "./lib/events.ts";
import { log } from "./lib/log.ts";
import { createProducer, type Producer } from "./lib/producer.ts";
import { Progress } from "./lib/progress.ts";
import { renderSummary, summarize } from "./lib/summary.ts";
import { randomComplexity } from "./lib/task.ts";
import { buildTimeline, renderTimelineSvg, renderTimelineText } from "./lib/timeline.ts";
import { watchEvents } from "./lib/watch.ts";

/** Tasks handed to the library at once: bounds the memory of a large run. */
const CHUNK = 10_000;

/** Publishes the tasks, and with `--wait` watches them complete; resolves with the exit code. */
async function produce(config: ProducerConfig): Promise<number> {
  const logger = log("producer");
  const ids = new Set<string>();
  const events: TareasEvent[] = [];
  const finished = new Set<string>(); // Completed or dead-lettered.
  const dead = new Set<string>();
  const allFinished = Promise.withResolvers<void>();
  const onEvent = (event: TareasEvent) => {
    if ("taskId" in event && !ids.has(event.taskId)) return; // Another producer's task.
    events.push(event);
    if (event.type !== "task.completed" && event.type !== "task.dead") return;
    finished.add(event.taskId);
    if (event.type === "task.dead") dead.add(event.taskId);
    if (finished.size === ids.size) allFinished.resolve();
  };
  const { url, queue, heartbeat } = config;
  // Subscribed before the first publish, so no completion can be missed.
  await using watch = config.wait ? await watchEvents({ url, queue, heartbeat, onEvent }) : null;
  await using producer = await createProducer({ url, queue, heartbeat });
  logger.info("Publishing {count} task(s) to {queue}", {
    count: config.stdin ? "the standard input's" : config.count,
    queue,
  });
  const started = performance.now();
  if (config.stdin) await publishLines(producer, ids);
  else await publishRandom(producer, config, ids);
  logger.info("Published {count} task(s) to {queue}, all confirmed by the broker in {ms} ms", {
    count: ids.size,
    queue,
    ms: Math.round(performance.now() - started),
  });
  if (watch === null) return 0;

  if (finished.size === ids.size) allFinished.resolve();
  const progress = new Progress({
    total: ids.size,
    isTty: Deno.stdout.isTerminal(),
    write: (text) => Deno.stdout.writeSync(new TextEncoder().encode(text)),
  });
  const show = () => progress.update({ done: finished.size, failed: dead.size });
  const ticker = setInterval(show, 500);
  const timeout = config.timeoutMs > 0 ? AbortSignal.timeout(config.timeoutMs) : undefined;
  const timedOut = new Promise<never>((_, reject) =>
    timeout?.addEventListener("abort", () => {
      const { completed } = summarize(events, ids);
      reject(
        new TareasError(
          `Timed out after ${config.timeoutMs / 1000} s: ${completed}/${ids.size} tasks completed`,
          1,
        ),
      );
    })
  );
  try {
    await Promise.race([allFinished.promise, watch.failed, timedOut]);
  } finally {
    clearInterval(ticker);
    show();
    progress.finish();
  }
  const timeline = buildTimeline(events);
  console.log(renderSummary(summarize(events, ids)));
  console.log(renderTimelineText(timeline, { color: Deno.stdout.isTerminal() }));
  if (config.timeline) {
    await Deno.writeTextFile(config.timeline, renderTimelineSvg(timeline));
    logger.info("Timeline written to {file}", { file: config.timeline });
  }
  return 0;
}

/** The original story: `--count` tasks with a random complexity each, and no payload. */
async function publishRandom(producer: Producer, config: ProducerConfig, ids: Set<string>) {
  for (let first = 0; first < config.count; first += CHUNK) {
    const size = Math.min(CHUNK, config.count - first);
    const tasks = await producer.enqueueMany(Array.from({ length: size }, () => null), {
      options: (_, i) => ({
        seq: first + i + 1,
        complexity: randomComplexity(config.min, config.max),
      }),
    });
    for (const task of tasks) ids.add(task.id);
  }
}

/** One task per line of standard input, the line's JSON value being its payload. */
async function publishLines(producer: Producer, ids: Set<string>) {
  let chunk: unknown[] = [];
  const flush = async () => {
    const first = ids.size;
    const tasks = await producer.enqueueMany(chunk, {
      options: (_, i) => ({ seq: first + i + 1 }),
    });
    for (const task of tasks) ids.add(task.id);
    chunk = [];
  };
  let number = 0;
  for await (const line of lines(Deno.stdin.readable)) {
    number++;
    if (line.trim() === "") continue;
    let payload: unknown;
    try {
      payload = JSON.parse(line);
    } catch (error) {
      await flush();
      throw new UsageError(
        `Line ${number} of standard input is not JSON (${(error as Error).message}); ` +
          `${ids.size} task(s) before it were published and confirmed`,
      );
    }
    chunk.push(payload);
    if (chunk.length >= CHUNK) await flush();
  }
  await flush();
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
