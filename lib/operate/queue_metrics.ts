/**
 * A queue's figures as Prometheus text, from its monitor's snapshot (what `deno task dashboard`
 * shows and serves on `/metrics`): messages ready, unacked and dead-lettered, consumers, workers
 * by state, and each worker's liveness. Written by prom-client, as a worker's metrics are
 * (`metrics.ts`).
 * @module
 */
import { printable } from "../core/text.ts";
import { Gauge, Registry } from "../deps/prom_client.ts";
import type { MonitorSnapshot, WorkerState } from "../observe/monitor.ts";

/** The content type of the Prometheus text exposition format, for a `/metrics` response. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * Options of {@linkcode renderQueueMetrics}.
 *
 * @example
 * ```ts
 * const options: QueueMetricsOptions = { maxWorkers: 20 };
 * ```
 */
export interface QueueMetricsOptions {
  /**
   * Most workers given series of their own (online ones first, then the most recently seen):
   * worker names come from events anyone may publish. All are counted in `tareas_queue_workers`.
   * @default {100}
   */
  maxWorkers?: number;
}

const WORKER_STATES: readonly WorkerState[] = ["online", "lost", "offline"];

/**
 * A queue's figures as Prometheus text, from a snapshot of its monitor (what `deno task
 * dashboard` shows): messages ready, unacked and dead-lettered, consumers, workers by state, and
 * each worker's liveness and last sign of life.
 *
 * @example
 * ```ts
 * const body = await renderQueueMetrics(monitor.snapshot());
 * return new Response(body, { headers: { "content-type": PROMETHEUS_CONTENT_TYPE } });
 * ```
 */
export function renderQueueMetrics(
  snapshot: MonitorSnapshot,
  options: QueueMetricsOptions = {},
): Promise<string> {
  const registry = new Registry();
  const registers = [registry];
  const queue = printable(snapshot.queue);
  const figures: [string, string, number][] = [
    ["tareas_queue_ready_messages", "Messages ready for delivery", snapshot.ready],
    [
      "tareas_queue_unacked_messages",
      "Messages delivered and not yet acked, as the workers online report",
      snapshot.unacked,
    ],
    ["tareas_queue_consumers", "Consumers attached to the queue", snapshot.consumers],
    [
      "tareas_queue_dead_lettered_messages",
      "Messages in the dead-letter queue <queue>.dead",
      snapshot.dead,
    ],
  ];
  for (const [name, help, value] of figures) {
    new Gauge({ name, help, labelNames: ["queue"], registers }).set({ queue }, value);
  }
  const byState = new Gauge({
    name: "tareas_queue_workers",
    help: "Workers by state: online (reporting), lost (silent), offline (stopped)",
    labelNames: ["queue", "state"],
    registers,
  });
  for (const state of WORKER_STATES) {
    byState.set(
      { queue, state },
      snapshot.workers.filter((worker) => worker.state === state).length,
    );
  }
  const up = new Gauge({
    name: "tareas_queue_worker_up",
    help: "1 while the worker reports (online), 0 once lost or offline",
    labelNames: ["queue", "worker"],
    registers,
  });
  const lastSeen = new Gauge({
    name: "tareas_queue_worker_last_seen_timestamp_seconds",
    help: "When the worker's last event arrived, in seconds since the epoch",
    labelNames: ["queue", "worker"],
    registers,
  });
  // The snapshot lists online workers first, then the most recently seen.
  for (const worker of snapshot.workers.slice(0, options.maxWorkers ?? 100)) {
    const labels = { queue, worker: printable(worker.name) };
    up.set(labels, worker.state === "online" ? 1 : 0);
    lastSeen.set(labels, Date.parse(worker.lastSeen) / 1000);
  }
  return registry.metrics();
}

/**
 * The response to a scrape of a queue's `/metrics`: {@linkcode renderQueueMetrics} of `snapshot`
 * in the text exposition format, not to be cached.
 *
 * @example
 * ```ts
 * if (url.pathname === "/metrics") return queueMetricsResponse(monitor.snapshot());
 * ```
 */
export async function queueMetricsResponse(
  snapshot: MonitorSnapshot,
  options: QueueMetricsOptions = {},
): Promise<Response> {
  return new Response(await renderQueueMetrics(snapshot, options), {
    headers: { "content-type": PROMETHEUS_CONTENT_TYPE, "cache-control": "no-store" },
  });
}
