/**
 * Delayed tasks at scale: N tasks with mixed delays (uniform from 0 to a maximum) published with
 * the library's `enqueueMany` and `{ delay }`, through the delays' ladder (`lib/core/delays.ts`),
 * to one worker with a no-op handler that notes how late each task started. The same N tasks
 * without a delay are the reference.
 * @module
 */
import { Fixture, type OursOptions } from "./ours.ts";
import { type Child, spawnDeno } from "./_proc.ts";
import { CpuWindow, serverOf } from "./_procfs.ts";
import { watchPublisher } from "./floor.ts";
import { quantile } from "./_stats.ts";
import { benchFile, withTimeout } from "./_util.ts";

/** Prefetch and concurrency of the worker (those of the short-task scenario). */
export const DELAYS_PREFETCH = 200;

/** A task that starts more than this many ms before its time counts as early (clock rounding). */
export const EARLY_TOLERANCE_MS = 1;

/** Options of {@linkcode runDelays}. */
export interface DelaysOptions extends OursOptions {
  /** How many tasks. */
  tasks: number;
  /** Delays are drawn uniformly from 0 to this, in ms. */
  maxDelayMs: number;
  /** `delayed`: each task with its delay; `undelayed`: the same tasks without (the reference). */
  mode: "delayed" | "undelayed";
  /** Give up after this long. @default {120 s + the longest delay + 5 ms per task} */
  timeoutMs?: number;
}

/** Lateness of the tasks' starts (start − due), ms. */
export interface Lateness {
  /** Median. */
  p50: number;
  /** 99th percentile. */
  p99: number;
  /** The latest. */
  max: number;
  /** The earliest (negative: before its time). */
  min: number;
  /** Tasks started more than {@linkcode EARLY_TOLERANCE_MS} before their time. */
  early: number;
}

/** One run of the delays scenario. */
export interface DelaysRun {
  /** Delayed or the undelayed reference. */
  mode: DelaysOptions["mode"];
  /** Tasks published. */
  tasks: number;
  /** Tasks started (each once: the worker reports its count). */
  completed: number;
  /** First publish to the last confirm, ms. */
  publishMs: number;
  /** `tasks / publishMs × 1000`. */
  publishPerSecond: number;
  /** The first task's start to the last one's, ms. */
  deliverySpanMs: number;
  /** `completed / deliverySpanMs × 1000`: tasks per second reaching the worker. */
  deliveryPerSecond: number;
  /** The first publish to the last start, ms. */
  elapsedMs: number;
  /** The first due time to the last, ms (delayed only). */
  dueSpanMs?: number;
  /** Start − due time (delayed only). */
  lateness?: Lateness;
  /** Ladder queues a task passed through, mean and most (delayed only). */
  ladder?: { mean: number; most: number };
  /** The 1-minute load average when the run started. */
  loadAverage: number;
  /**
   * CPU seconds: the broker from the first publish (as the benchmark reads the publisher's line)
   * to the last start (`broker`) and to the last confirm (`brokerPublishing`); the worker over
   * the first window.
   */
  cpu: { broker?: number; brokerPublishing?: number; worker?: number };
}

/**
 * Runs N tasks through one worker (`--prefetch 200 --concurrency 200`, `bench/_delay_handler.ts`)
 * from `bench/_delay_publisher.ts`, delayed or not. Timed from the publisher's first publish; the
 * end is the last task's start as the handler reports it.
 */
export async function runDelays(options: DelaysOptions): Promise<DelaysRun> {
  const { tasks, maxDelayMs, mode } = options;
  const timeoutMs = options.timeoutMs ?? 120_000 + maxDelayMs + 5 * tasks;
  const loadAverage = Deno.loadavg()[0]!;
  await using fixture = await Fixture.open("delays", ["worker.online"], options);
  const broker = await serverOf(fixture.url);
  const { child: worker, name } = fixture.spawnWorker([
    ...["--prefetch", String(DELAYS_PREFETCH), "--concurrency", String(DELAYS_PREFETCH)],
    ...["--handler", benchFile("_delay_handler.ts")],
  ]);
  await fixture.waitOnline(worker, name);
  const starts = collectStarts(worker, tasks);
  const publisher = spawnDeno(benchFile("_delay_publisher.ts"), [
    ...["--queue", fixture.queue, "--count", String(tasks)],
    ...["--max-delay-ms", String(maxDelayMs), ...(mode === "undelayed" ? ["--undelayed"] : [])],
  ], { name: "delay-publisher", env: { AMQP_URL: fixture.url, LOG_LEVEL: "warning" } });
  fixture.children.push(publisher);
  const watch = await watchPublisher(publisher, timeoutMs);
  // Opened at the first publish, not at the spawn: the ladder's declaration (its 25 queues and
  // exchanges, before the warm-up task) would weigh on a small run.
  const brokerPids = broker ? [broker.pid] : [];
  const window = await CpuWindow.open({ worker: [worker.pid], broker: brokerPids });
  const publishWindow = await CpuWindow.open({ broker: brokerPids });
  await publisher.waitForReport("confirmed", timeoutMs);
  const { broker: brokerPublishing } = await publishWindow.close();
  await withTimeout(starts.done, timeoutMs, `${tasks} tasks to start on ${name}`);
  const cpu = await window.close();
  const { confirmedAt } = await watch.finish();
  const dues = (await publisher.waitForReport("dues", 1_000)).fields.map(Number);
  const publishMs = confirmedAt - watch.publishedAt;
  const deliverySpanMs = starts.last - starts.first;
  const run: DelaysRun = {
    mode,
    tasks,
    completed: starts.count,
    publishMs,
    publishPerSecond: tasks / publishMs * 1000,
    deliverySpanMs,
    deliveryPerSecond: starts.count / deliverySpanMs * 1000,
    elapsedMs: starts.last - watch.publishedAt,
    loadAverage,
    cpu: {
      ...cpu,
      ...(brokerPublishing === undefined ? {} : { brokerPublishing }),
    },
  };
  if (mode === "delayed") {
    const [firstDue, lastDue, mean, most] = dues as [number, number, number, number];
    run.dueSpanMs = lastDue - firstDue;
    run.ladder = { mean, most };
    run.lateness = latenessOf(starts.lateness);
  }
  return run;
}

/** p50, p99, max, min and the early count of `values` (start − due, ms). */
export function latenessOf(values: readonly number[]): Lateness {
  let early = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const value of values) {
    if (value < -EARLY_TOLERANCE_MS) early++;
    min = Math.min(min, value);
    max = Math.max(max, value);
  }
  return { p50: quantile(values, 0.5), p99: quantile(values, 0.99), max, min, early };
}

/** What the worker's `bench late` lines told so far. */
interface Starts {
  count: number;
  first: number;
  last: number;
  lateness: number[];
  /** Resolves once `tasks` have started. */
  done: Promise<void>;
}

/** Reads `worker`'s `bench late` lines (see `bench/_delay_handler.ts`). */
function collectStarts(worker: Child, tasks: number): Starts {
  const { promise, resolve } = Promise.withResolvers<void>();
  const starts: Starts = { count: 0, first: 0, last: 0, lateness: [], done: promise };
  worker.onLine((line) => {
    if (line.stream !== "stdout" || !line.text.startsWith("bench late ")) return;
    const [count, first, last, values] = line.text.slice("bench late ".length).split(" ");
    starts.count = Number(count);
    starts.first = Number(first);
    starts.last = Number(last);
    for (const value of values?.split(",") ?? []) starts.lateness.push(Number(value));
    if (starts.count >= tasks) resolve();
  });
  return starts;
}
