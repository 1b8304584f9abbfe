/**
 * `deno task produce`: the producer's command line over the library (`lib/core/producer/mod.ts`):
 * random tasks of the original story or JSON Lines from standard input (`lib/cli/stdin.ts`), named
 * and delayed as the flags say, and with `--wait` the run watched to its end
 * (`lib/cli/run_wait.ts`), its results written as they come (`lib/cli/output_files.ts`). Run
 * `deno task produce --help` for flags.
 * @module
 */
import { runMain } from "./lib/cli/main.ts";
import { parseProducerArgs, PRODUCER_HELP, type ProducerConfig } from "./lib/cli/config.ts";
import { checkWritable, ResultsFile } from "./lib/cli/output_files.ts";
import { RunWatch } from "./lib/cli/run_wait.ts";
import { lines, parseLine } from "./lib/cli/stdin.ts";
import { UsageError } from "./lib/core/errors.ts";
import { log } from "./lib/core/log.ts";
import { createProducer, type EnqueueOptions, type Producer } from "./lib/core/producer/mod.ts";
import { randomComplexity } from "./lib/core/task.ts";
import type { RunRecord } from "./lib/observe/run_record.ts";

/** Tasks handed to the library at once: bounds the memory of a large run. */
const CHUNK = 10_000;

/** Publishes the tasks, and with `--wait` watches them finish; resolves with the exit code. */
async function produce(config: ProducerConfig): Promise<number> {
  const logger = log("producer");
  if (config.timeline !== undefined) await checkWritable("--timeline", config.timeline);
  const { url, queue, heartbeat } = config;
  // Subscribed before the first publish, so no event of the run can be missed.
  await using run = config.wait ? await RunWatch.open({ url, queue, heartbeat }) : undefined;
  await using results = config.results === undefined
    ? undefined
    : await ResultsFile.open(config.results);
  await using producer = await createProducer({
    url,
    queue,
    heartbeat,
    awaited: config.wait,
    // Every task then carries this producer's reply queue: its result comes back there.
    ...(results === undefined ? {} : { onResult: (result) => results.add(result) }),
  });
  logger.info("Publishing {count} task(s) to {queue}", {
    count: config.stdin ? "standard input's" : config.count,
    queue,
  });
  const started = performance.now();
  const count = config.stdin
    ? await publishLines(producer, config, run?.record)
    : await publishRandom(producer, config, run?.record);
  logger.info("Published {count} task(s) to {queue}, all confirmed by the broker in {ms} ms", {
    count,
    queue,
    ms: Math.round(performance.now() - started),
  });
  if (run === undefined) return 0;
  const code = await run.wait({ timeoutMs: config.timeoutMs, timeline: config.timeline, results });
  if (results !== undefined) {
    await results.close();
    logger.info("Results of {count} task(s) written to {file}", {
      count: results.written,
      file: config.results,
    });
  }
  return code;
}

/** The options every task of the run gets from the flags: its name and its delay. */
function flagOptions(config: ProducerConfig): EnqueueOptions {
  return {
    ...(config.name === undefined ? {} : { name: config.name }),
    ...(config.delayMs > 0 ? { delay: config.delayMs } : {}),
  };
}

/** The original story: `--count` tasks with a random complexity each, and no payload. */
async function publishRandom(
  producer: Producer,
  config: ProducerConfig,
  record: RunRecord | undefined,
): Promise<number> {
  const common = flagOptions(config);
  for (let first = 0; first < config.count; first += CHUNK) {
    const payloads = new Array(Math.min(CHUNK, config.count - first)).fill(null);
    // The ids are chosen, and added to the run's record, before the tasks are published: a task
    // can complete before its confirm comes back.
    const ids = payloads.map(() => crypto.randomUUID());
    record?.expect(ids);
    await producer.enqueueMany(payloads, {
      options: (_, i) => ({
        ...common,
        id: ids[i]!,
        seq: first + i + 1,
        complexity: randomComplexity(config.min, config.max),
      }),
    });
  }
  return config.count;
}

/**
 * One task per line of standard input (`JSON`, or `NAME<TAB>JSON`: see `lib/cli/stdin.ts`),
 * published as the lines come (`tail -f jobs.jsonl | deno task produce --stdin` works). A line
 * that is not UTF-8, not JSON, nested too deep or with a bad name stops the run, once the tasks
 * before it are confirmed.
 */
async function publishLines(
  producer: Producer,
  config: ProducerConfig,
  record: RunRecord | undefined,
): Promise<number> {
  const common = flagOptions(config);
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
    const parsed = parseLine(line);
    if ("problem" in parsed) return await refuse(parsed.problem);
    // The id is known to the record before the task is published: it may complete at once.
    const id = crypto.randomUUID();
    record?.expect([id]);
    const options: EnqueueOptions = { ...common, id, seq: ++published };
    if (parsed.name !== undefined) options.name = parsed.name;
    const confirm: Promise<unknown> = producer.enqueue(parsed.payload, options).then(
      () => confirms.delete(confirm),
      (error) => failure ??= error,
    );
    confirms.add(confirm);
    if (confirms.size >= CHUNK) await Promise.race(confirms);
  }
  await settle();
  return published;
}

if (import.meta.main) {
  await runMain("producer", {
    parse: () => parseProducerArgs(Deno.args),
    help: PRODUCER_HELP,
    run: produce,
  });
}
