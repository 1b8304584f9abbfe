/**
 * Running workers in production: a worker's Prometheus metrics (`serveMetrics`, `workerMetrics`),
 * its health checks for an orchestrator (`serveHealth`), a queue's figures as the dashboard sees
 * them (`renderQueueMetrics`), all in the text exposition format written by prom-client. With
 * Deno's built-in OpenTelemetry on, `otelMetrics` sends the worker's measures as OTel metrics too.
 * Every metric, its type, labels and meaning: docs/production.md.
 *
 * @example
 * ```ts
 * import { createWorker } from "../../mod.ts";
 * import { serveMetrics } from "./metrics.ts";
 *
 * await using metrics = serveMetrics({ port: 9464 });
 * await using worker = await createWorker({ handler: (task) => console.log(task.id), metrics });
 * // curl http://127.0.0.1:9464/metrics
 * ```
 * @module
 */
import type { WorkerObserver } from "../core/worker/types.ts";
import { Counter, Gauge, Histogram, Registry } from "../deps/prom_client.ts";
import { serve, text } from "./_serve.ts";
import { PROMETHEUS_CONTENT_TYPE } from "./queue_metrics.ts";
import {
  DEFAULT_MAX_TASK_NAMES,
  DURATION_BUCKETS,
  type QueueFigures,
  type TaskCount,
  WorkerWatch,
} from "./_worker_watch.ts";

export { DEFAULT_MAX_TASK_NAMES, DURATION_BUCKETS, OTHER_NAME } from "./_worker_watch.ts";
export {
  DEFAULT_MAX_EVENT_LOOP_LAG_MS,
  type HealthOptions,
  type HealthServer,
  serveHealth,
} from "./health.ts";
export { combineObservers } from "./observers.ts";
export { otelMetrics, type OtelMetricsOptions } from "./otel_metrics.ts";
export {
  PROMETHEUS_CONTENT_TYPE,
  type QueueMetricsOptions,
  queueMetricsResponse,
  renderQueueMetrics,
} from "./queue_metrics.ts";

/**
 * Options of {@linkcode workerMetrics}.
 *
 * @example
 * ```ts
 * const options: WorkerMetricsOptions = { maxTaskNames: 20, buckets: [0.1, 1, 10] };
 * ```
 */
export interface WorkerMetricsOptions {
  /**
   * Most task names given a label value of their own (names seen to run, so names the worker has
   * handlers for); every other name is `"(other)"`.
   * @default {100}
   */
  maxTaskNames?: number;
  /** Upper bounds of the handler duration histogram's buckets, in seconds. @default {DURATION_BUCKETS} */
  buckets?: readonly number[];
}

/**
 * A worker's metrics, kept in memory: pass it as `createWorker({ metrics })` and serve
 * `render()` wherever you like (or use {@linkcode serveMetrics}).
 *
 * @example
 * ```ts
 * const metrics = workerMetrics();
 * const worker = await createWorker({ handler, metrics });
 * Deno.serve((request) => new URL(request.url).pathname === "/metrics"
 *   ? metrics.render().then((body) => new Response(body, { headers: { "content-type": PROMETHEUS_CONTENT_TYPE } }))
 *   : new Response("Not found", { status: 404 }));
 * ```
 */
export interface WorkerMetrics extends WorkerObserver {
  /** The metrics now, in the Prometheus text exposition format (what a scrape gets). */
  render(): Promise<string>;
}

/**
 * Options of {@linkcode serveMetrics}.
 *
 * @example
 * ```ts
 * const options: MetricsServerOptions = { port: 9464, hostname: "0.0.0.0" };
 * ```
 */
export interface MetricsServerOptions extends WorkerMetricsOptions {
  /** TCP port of the endpoint; 0 for any free port (see {@linkcode MetricsServer.url}). */
  port: number;
  /** Address to listen on: `"0.0.0.0"` for every interface. @default {"127.0.0.1"} */
  hostname?: string;
  /** Aborting it closes the server. */
  signal?: AbortSignal;
}

/**
 * A worker's metrics served on `/metrics`; see {@linkcode serveMetrics}.
 *
 * @example
 * ```ts
 * await using metrics = serveMetrics({ port: 0 });
 * console.log(`scrape ${metrics.url}`);
 * ```
 */
export interface MetricsServer extends WorkerMetrics, AsyncDisposable {
  /** The endpoint, `http://<hostname>:<port>/metrics`. */
  readonly url: string;
  /** Stops serving (waits for scrapes in progress); idempotent. */
  close(): Promise<void>;
}

/** What each count of task events is called, and what it means. */
const TASK_COUNTERS: Record<TaskCount, { name: string; help: string }> = {
  completed: {
    name: "tareas_tasks_completed_total",
    help: "Tasks whose handler finished, acked",
  },
  failed: {
    name: "tareas_tasks_failed_total",
    help: "Attempts whose handler threw or timed out (each retried or dead-lettered)",
  },
  retried: {
    name: "tareas_tasks_retried_total",
    help: "Failed attempts sent back to run again after their backoff",
  },
  dead: {
    name: "tareas_tasks_dead_lettered_total",
    help: "Tasks moved to the dead-letter queue (attempts used up, failed for good, no handler, " +
      "not a task)",
  },
};

/** The gauges read from the attached workers at each scrape. */
const WORKER_GAUGES: { name: string; help: string; read: (figures: QueueFigures) => number }[] = [
  {
    name: "tareas_worker_tasks_in_hand",
    help: "Deliveries held: handlers running plus deliveries waiting for a free slot",
    read: (figures) => figures.inHand,
  },
  {
    name: "tareas_worker_prefetch",
    help: "Unacked deliveries the broker may hand the worker at once",
    read: (figures) => figures.prefetch,
  },
  {
    name: "tareas_worker_concurrency",
    help: "Handlers the worker runs at once",
    read: (figures) => figures.concurrency,
  },
  {
    name: "tareas_worker_ready",
    help: "1 while consuming on a live connection and not stopping; 0 while reconnecting or " +
      "draining",
    read: (figures) => figures.ready,
  },
];

/**
 * A worker's metrics in memory, rendered as Prometheus text on demand: tasks completed, failed,
 * retried and dead-lettered by queue and task name, the handler duration histogram, tasks in
 * hand, prefetch, concurrency, readiness and reconnects. Attach it with
 * `createWorker({ metrics })`.
 *
 * @throws {RangeError} when `maxTaskNames` is not a whole number ≥ 0.
 * @example
 * ```ts
 * const metrics = workerMetrics();
 * await using worker = await createWorker({ handler, metrics });
 * console.log(await metrics.render());
 * ```
 */
export function workerMetrics(options: WorkerMetricsOptions = {}): WorkerMetrics {
  const registry = new Registry();
  const registers = [registry];
  const labelNames = ["queue", "name"] as const;
  const counters = Object.fromEntries(
    Object.entries(TASK_COUNTERS).map(([count, { name, help }]) => [
      count,
      new Counter({ name, help, labelNames, registers }),
    ]),
  ) as Record<TaskCount, Counter<"queue" | "name">>;
  const duration = new Histogram({
    name: "tareas_task_duration_seconds",
    help: "How long handlers ran, for the attempts that completed or failed",
    labelNames,
    buckets: [...(options.buckets ?? DURATION_BUCKETS)],
    registers,
  });
  const watch = new WorkerWatch({
    count: (count, queue, name) => counters[count].inc({ queue, name }),
    duration: (queue, name, seconds) => duration.observe({ queue, name }, seconds),
  }, options.maxTaskNames ?? DEFAULT_MAX_TASK_NAMES);
  for (const { name, help, read } of WORKER_GAUGES) {
    new Gauge({
      name,
      help,
      labelNames: ["queue"],
      registers,
      collect() {
        this.reset();
        for (const figures of watch.figures()) this.set({ queue: figures.queue }, read(figures));
      },
    });
  }
  new Counter({
    name: "tareas_worker_reconnects_total",
    help: "Times the worker connected again after losing its connection or its channels",
    labelNames: ["queue"],
    registers,
    collect() {
      this.reset();
      for (const [queue, count] of watch.reconnects()) this.inc({ queue }, count);
    },
  });
  return {
    attach: (worker) => watch.attach(worker),
    render: () => registry.metrics(),
  };
}

/**
 * Serves a worker's metrics ({@linkcode workerMetrics}) on `http://<hostname>:<port>/metrics`
 * for Prometheus to scrape. It is a `WorkerObserver`: pass it as `createWorker({ metrics })`.
 *
 * @throws {UsageError} when the port is out of range or cannot be listened on.
 * @example
 * ```ts
 * await using metrics = serveMetrics({ port: 9464 });
 * await using worker = await createWorker({ handler, metrics });
 * ```
 */
export function serveMetrics(options: MetricsServerOptions): MetricsServer {
  const metrics = workerMetrics(options);
  const listening = serve({
    what: "metrics",
    port: options.port,
    hostname: options.hostname ?? "127.0.0.1",
    signal: options.signal,
    routes: {
      "/metrics": async () => text(200, await metrics.render(), PROMETHEUS_CONTENT_TYPE),
    },
  });
  return {
    url: `${listening.url}/metrics`,
    attach: metrics.attach,
    render: metrics.render,
    close: listening.close,
    [Symbol.asyncDispose]: listening.close,
  };
}
