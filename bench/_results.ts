/**
 * Result types shared by the runners and the report.
 * @module
 */

/** One throughput run: N tasks through one system. */
export interface ThroughputRun {
  /** Tasks published. */
  tasks: number;
  /** Distinct tasks seen completed (acked). Equals `tasks` in a good run. */
  completed: number;
  /**
   * Milliseconds from the publisher's first publish to the last task completed (acked). The
   * consumers are idle and waiting when the publisher starts, so publishing and consuming overlap
   * and the whole publish phase is inside the window; the publisher's start-up is not.
   */
  elapsedMs: number;
  /** `completed / elapsedMs × 1000`. */
  tasksPerSecond: number;
  /** Milliseconds from the first publish until the publisher had all confirms, when known. */
  publishMs?: number;
  /** Milliseconds from the first publish to the first task started, when known. */
  startLagMs?: number;
  /** The 1-minute load average when the run started. */
  loadAverage: number;
  /** CPU seconds (user + system) spent within the run, per role; absent when not measured. */
  cpu: RunCpu;
}

/**
 * CPU seconds spent by each role of a run, from `/proc/<pid>/stat` (`utime + stime`, every
 * thread). Consumers and the broker are sampled when the timed window opens and when it closes;
 * the producer from its first publish (its own figure on its `bench publishing` line) to its
 * exit (printed by `bench/_exit_probe.ts`).
 */
export interface RunCpu {
  /** Every consumer process together (our workers, the bare consumers, BullMQ workers). */
  consumers?: number;
  /** The producer process. */
  producer?: number;
  /** The broker process (RabbitMQ's `beam.smp`, or `redis-server` for BullMQ). */
  broker?: number;
}

/** One run of a publisher alone: N persistent messages through a confirm channel. */
export interface PublishRun {
  /** Messages published. */
  count: number;
  /** Messages the queue held afterwards (equals `count` in a good run). */
  queued: number;
  /** Milliseconds from the first publish to the last confirm. */
  elapsedMs: number;
  /** `count / elapsedMs × 1000`. */
  perSecond: number;
  /** The 1-minute load average when the run started. */
  loadAverage: number;
  /** CPU seconds of the publisher (first publish to exit) and of the broker (same window). */
  cpu: { producer?: number; broker?: number };
}

/** Shape of one throughput scenario. */
export interface ThroughputShape {
  /** How many consumer processes. */
  consumers: number;
  /** Prefetch of each consumer (BullMQ: concurrency). */
  prefetch: number;
  /** Concurrency of each of our workers. */
  concurrency: number;
}

/** Options every throughput runner takes. */
export interface ThroughputOptions extends ThroughputShape {
  /** How many no-op tasks. */
  tasks: number;
  /** Give up after this long. @default {120 s + 20 ms per task} */
  timeoutMs?: number;
}

/** Start-up time and idle memory of one process. */
export interface StartupRun {
  /** Milliseconds from spawn to the ready signal. */
  startupMs: number;
  /** Resident set size right after the ready signal, KiB. */
  rssKiB: number;
}

/** One failover measurement. */
export interface FailoverRun {
  /** Milliseconds from the SIGKILL to the task starting on another worker. */
  latencyMs: number;
}

/** Default completion timeout of a throughput run of `tasks` tasks. */
export function throughputTimeoutMs(tasks: number): number {
  return 120_000 + 20 * tasks;
}

/** What one consumer process reports at the end of a throughput run. */
export interface ConsumerReport {
  /** Tasks it completed. */
  completed: number;
  /** When it started its first task (epoch ms). */
  first: number;
  /** When it completed its last task (epoch ms). */
  last: number;
}

/**
 * Combines the consumers' reports of a run published from `publishedAt` and confirmed at
 * `confirmedAt`, timed from `startedAt` (default: `publishedAt`).
 */
export function throughputRun(
  tasks: number,
  times: { publishedAt: number; confirmedAt: number; startedAt?: number },
  reports: readonly ConsumerReport[],
  measures: { loadAverage: number; cpu: RunCpu },
): ThroughputRun {
  const active = reports.filter((report) => report.completed > 0);
  const completed = active.reduce((sum, report) => sum + report.completed, 0);
  const from = times.startedAt ?? times.publishedAt;
  let last = 0;
  let first = Infinity;
  for (const report of active) {
    last = Math.max(last, report.last);
    first = Math.min(first, report.first);
  }
  const elapsedMs = last - from;
  return {
    tasks,
    completed,
    elapsedMs,
    tasksPerSecond: completed / elapsedMs * 1000,
    publishMs: times.confirmedAt - times.publishedAt,
    startLagMs: first - from,
    ...measures,
  };
}
