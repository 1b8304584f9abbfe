/**
 * A BullMQ worker process for the benchmark, with default lock and stall settings and a
 * constructed ioredis connection (`maxRetriesPerRequest: null`). Prints `bench ready <epoch ms>`
 * once its connections are ready.
 *
 * - `--mode count` (default): no-op jobs. At most every 10 ms while jobs complete, prints
 *   `bench count <jobs completed> <epoch ms of the first start> <epoch ms of the last completion>`.
 * - `--mode hold`: prints `bench started <job id> <epoch ms>` when a job starts, then holds it
 *   forever (to be SIGKILLed).
 * - `--mode result`: each job returns `{"ok":true}` (its `returnvalue`), for the call scenario.
 *
 * SIGTERM closes the worker gracefully.
 *
 * `deno run --allow-all bench/_bullmq_worker.ts --queue Q [--concurrency C]
 * [--mode count|hold|result]`
 * @module
 */
import { parseArgs } from "node:util";
import { Worker } from "bullmq";
import { Redis } from "ioredis";
import { CALL_RESULT } from "./_result_handler.ts";
import { nowMs, redisUrl } from "./_util.ts";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      queue: { type: "string" },
      concurrency: { type: "string", default: "1" },
      mode: { type: "string", default: "count" },
    },
  });
  const queue = values.queue;
  const concurrency = Number(values.concurrency);
  const mode = values.mode;
  if (
    !queue || !Number.isInteger(concurrency) || concurrency < 1 ||
    (mode !== "count" && mode !== "hold" && mode !== "result")
  ) {
    console.error(
      "Usage: _bullmq_worker.ts --queue Q [--concurrency C] [--mode count|hold|result]",
    );
    Deno.exit(2);
  }
  const connection = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  const hold = new Promise<never>(() => {});
  const worker = new Worker(queue, async (job) => {
    if (mode === "hold") {
      console.log(`bench started ${job.id} ${nowMs()}`);
      await hold;
    }
    if (mode === "result") return CALL_RESULT;
  }, { connection, concurrency });
  let completed = 0;
  let first = 0;
  let last = 0;
  let pending: ReturnType<typeof setTimeout> | undefined;
  // One line per 10 ms at most: the reported time is the last completion's, not the line's.
  worker.on("completed", () => {
    completed++;
    last = nowMs();
    pending ??= setTimeout(() => {
      pending = undefined;
      console.log(`bench count ${completed} ${first} ${last}`);
    }, 10);
  });
  worker.on("active", () => {
    if (first === 0) first = nowMs();
  });
  worker.on("error", (error) => console.error(`worker error: ${error.message}`));
  await worker.waitUntilReady();
  console.log(`bench ready ${nowMs()}`);
  const { promise: stopped, resolve: stop } = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGTERM", stop);
  await stopped;
  await worker.close(true);
  connection.disconnect();
  Deno.exit(0);
}

if (import.meta.main) {
  await main();
}
