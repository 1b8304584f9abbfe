/**
 * `deno task work`: the worker's command line over the library (`lib/core/worker/`): flags, handler
 * loading, signals and exit codes. Run `deno task work --help` for flags.
 * @module
 */
import { onStopSignals, runMain } from "./lib/cli/main.ts";
import { parseWorkerArgs, WORKER_HELP, type WorkerConfig } from "./lib/cli/config.ts";
import { loadHandler, sleepHandler } from "./lib/core/handler.ts";
import { log } from "./lib/core/log.ts";
import { createWorker } from "./lib/core/worker/mod.ts";

/** Runs a worker until a signal stops it; resolves with the exit code. */
async function work(config: WorkerConfig): Promise<number> {
  // The command line's default work is the original simulated one; the library has no default.
  const handler = config.handler === undefined ? sleepHandler : await loadHandler(config.handler);
  const stop = new AbortController();
  const worker = await createWorker({
    handler,
    url: config.url,
    queue: config.queue,
    heartbeat: config.heartbeat,
    ...(config.name === undefined ? {} : { name: config.name }),
    concurrency: config.concurrency,
    prefetch: config.prefetch,
    timeScale: config.timeScale,
    maxAttempts: config.maxAttempts,
    retryDelay: config.retryDelayMs,
    taskTimeout: config.taskTimeoutMs,
    maxBody: config.maxBodyBytes,
    signal: stop.signal,
  });
  const signals = onStopSignals(() => stop.abort(), () => {
    log("worker").warn("Second signal: exiting now; the broker requeues the tasks in hand");
    Deno.exit(1);
  });
  try {
    await worker.closed;
  } finally {
    signals.remove();
  }
  return 0;
}

if (import.meta.main) {
  await runMain("worker", {
    parse: () => parseWorkerArgs(Deno.args),
    help: WORKER_HELP,
    run: work,
  });
}
