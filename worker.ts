/**
 * `deno task work`: the worker's command line over the library (`lib/core/worker/`): flags, handler
 * loading (`lib/cli/handler_module.ts`: one handler, or handlers by task name), signals and exit
 * codes. Run `deno task work --help` for flags.
 * @module
 */
import { onStopSignals, runMain } from "./lib/cli/main.ts";
import { parseWorkerArgs, WORKER_HELP, type WorkerConfig } from "./lib/cli/config.ts";
import { loadHandler } from "./lib/cli/handler_module.ts";
import { sleepHandler } from "./lib/core/handler.ts";
import { log } from "./lib/core/log.ts";
import { createWorker } from "./lib/core/worker/mod.ts";
import { serveHealth } from "./lib/operate/health.ts";
import { combineObservers } from "./lib/operate/observers.ts";
import { otelMetrics } from "./lib/operate/otel_metrics.ts";

/** Runs a worker until a signal stops it; resolves with the exit code. */
async function work(config: WorkerConfig): Promise<number> {
  // The command line's default work is the original simulated one; the library has no default.
  const handlers = config.handler === undefined
    ? { handler: sleepHandler }
    : await loadHandler(config.handler);
  const stop = new AbortController();
  // Up before the worker connects, so that a probe hears "live, not ready" while it does; closed
  // once it has stopped. /readyz says not ready from the first signal on (the worker's `ready`).
  await using health = config.healthPort === undefined
    ? undefined
    : serveHealth({ port: config.healthPort, hostname: config.healthHost });
  await using metrics = config.metricsPort === undefined
    ? undefined
    // Loaded only when asked for: a worker without metrics does not load prom-client.
    : (await import("./lib/operate/metrics.ts"))
      .serveMetrics({ port: config.metricsPort, hostname: config.metricsHost });
  const logger = log("worker");
  if (health) logger.info("Health checks on {url}/livez and {url}/readyz", { url: health.url });
  if (metrics) logger.info("Metrics on {url}", { url: metrics.url });
  const worker = await createWorker({
    ...handlers,
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
    // With Deno's OpenTelemetry on (OTEL_DENO=true), the measures go out as OTel metrics too.
    metrics: combineObservers(health, metrics, otelMetrics()),
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
