/**
 * A worker's measures as OpenTelemetry metrics, through `@opentelemetry/api`'s global meter: with
 * Deno's built-in OpenTelemetry on (`OTEL_DENO=true`), Deno registers a meter provider there and
 * exports them over OTLP with its own. The same measures as the Prometheus endpoint, named so that
 * a collector's Prometheus exporter writes the same names (`tareas.tasks.completed` becomes
 * `tareas_tasks_completed_total`, `tareas.task.duration` in `s` becomes
 * `tareas_task_duration_seconds`) with the same attributes (`queue`, `name`).
 * @module
 */
import type { WorkerObserver } from "../core/worker/types.ts";
import { type Counter, createNoopMeter, metrics } from "../deps/opentelemetry.ts";
import {
  DEFAULT_MAX_TASK_NAMES,
  DURATION_BUCKETS,
  type QueueFigures,
  type TaskCount,
  WorkerWatch,
} from "./_worker_watch.ts";

/**
 * Options of {@linkcode otelMetrics}.
 *
 * @example
 * ```ts
 * const options: OtelMetricsOptions = { maxTaskNames: 20 };
 * ```
 */
export interface OtelMetricsOptions {
  /**
   * Most task names given an attribute value of their own; every other name is `"(other)"`.
   * @default {100}
   */
  maxTaskNames?: number;
}

const COUNTERS: Record<TaskCount, { name: string; description: string; unit: string }> = {
  completed: {
    name: "tareas.tasks.completed",
    description: "Tasks whose handler finished, acked",
    unit: "{task}",
  },
  failed: {
    name: "tareas.tasks.failed",
    description: "Attempts whose handler threw or timed out (each retried or dead-lettered)",
    unit: "{attempt}",
  },
  retried: {
    name: "tareas.tasks.retried",
    description: "Failed attempts sent back to run again after their backoff",
    unit: "{attempt}",
  },
  dead: {
    name: "tareas.tasks.dead_lettered",
    description: "Tasks moved to the dead-letter queue",
    unit: "{task}",
  },
};

const GAUGES: { name: string; description: string; read: (figures: QueueFigures) => number }[] = [
  {
    name: "tareas.worker.tasks_in_hand",
    description: "Deliveries held: handlers running plus deliveries waiting for a free slot",
    read: (figures) => figures.inHand,
  },
  {
    name: "tareas.worker.prefetch",
    description: "Unacked deliveries the broker may hand the worker at once",
    read: (figures) => figures.prefetch,
  },
  {
    name: "tareas.worker.concurrency",
    description: "Handlers the worker runs at once",
    read: (figures) => figures.concurrency,
  },
  {
    name: "tareas.worker.ready",
    description: "1 while consuming on a live connection and not stopping",
    read: (figures) => figures.ready,
  },
];

/**
 * A worker's measures as OpenTelemetry metrics, or `undefined` when no meter provider is
 * registered (Deno's OpenTelemetry is off and the program registered none): measuring for no one
 * would cost every task. Pass it as `createWorker({ metrics })`; call it once per program, as
 * its instruments are registered with the global meter.
 *
 * @throws {RangeError} when `maxTaskNames` is not a whole number ≥ 0.
 * @example
 * ```ts
 * // OTEL_DENO=true deno run --allow-net worker.ts
 * await using worker = await createWorker({ handler, metrics: otelMetrics() });
 * ```
 */
export function otelMetrics(options: OtelMetricsOptions = {}): WorkerObserver | undefined {
  const meter = metrics.getMeter("tareas");
  if (meter === createNoopMeter()) return undefined;
  const counters = Object.fromEntries(
    Object.entries(COUNTERS).map(([count, { name, description, unit }]) => [
      count,
      meter.createCounter(name, { description, unit }),
    ]),
  ) as Record<TaskCount, Counter>;
  const duration = meter.createHistogram("tareas.task.duration", {
    description: "How long handlers ran, for the attempts that completed or failed",
    unit: "s",
    advice: { explicitBucketBoundaries: [...DURATION_BUCKETS] },
  });
  const watch = new WorkerWatch({
    count: (count, queue, name) => counters[count].add(1, { queue, name }),
    duration: (queue, name, seconds) => duration.record(seconds, { queue, name }),
  }, options.maxTaskNames ?? DEFAULT_MAX_TASK_NAMES);
  for (const { name, description, read } of GAUGES) {
    meter.createObservableGauge(name, { description }).addCallback((result) => {
      for (const figures of watch.figures()) {
        result.observe(read(figures), { queue: figures.queue });
      }
    });
  }
  meter.createObservableCounter("tareas.worker.reconnects", {
    description: "Times the worker connected again after losing its connection or its channels",
    unit: "{reconnect}",
  }).addCallback((result) => {
    for (const [queue, count] of watch.reconnects()) result.observe(count, { queue });
  });
  return { attach: (worker) => watch.attach(worker) };
}
