/**
 * What a worker's metrics measure, whichever way they go out (Prometheus text, OpenTelemetry): its
 * task events counted by queue and task name, the handler's run time of each attempt that ran, and
 * its figures (tasks in hand, prefetch, concurrency, readiness, reconnects) read when asked.
 *
 * Task names come from messages, so anyone who may publish to the queue chooses them. Only a name
 * seen to run gets a label value of its own: a task runs only when the worker has a handler for
 * its name, so those names are the worker's own; every other name (no handler, a message that is
 * not a task) is {@linkcode OTHER_NAME}. The names kept are capped as well.
 *
 * Listening to a worker's events makes it dispatch them, which costs every task: only the events
 * that end an attempt are listened to, never `task.started`.
 * @module
 */
import type { TaskEvent } from "../core/events.ts";
import type { Worker, WorkerLifecycleEvent, WorkerObserver } from "../core/worker/types.ts";

/** The label value of every task name that has no label value of its own. */
export const OTHER_NAME = "(other)";

/** Most task names given a label value of their own, by default. */
export const DEFAULT_MAX_TASK_NAMES = 100;

/**
 * Upper bounds of the handler duration histogram's buckets, in seconds: from a few milliseconds
 * to the default task timeout (600 s) and beyond.
 */
export const DURATION_BUCKETS: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
  120,
  300,
  600,
  1800,
];

/** What is counted per task name: the four ends of an attempt. */
export type TaskCount = "completed" | "failed" | "retried" | "dead";

/** Where the measures of task events go. */
export interface TaskSink {
  /** One more of `count` for tasks named `name` on `queue`. */
  count(count: TaskCount, queue: string, name: string): void;
  /** A handler ran for `seconds` (completed or failed). */
  duration(queue: string, name: string, seconds: number): void;
}

/** The figures of the workers attached on one queue, read now (summed over those workers). */
export interface QueueFigures {
  /** The work queue. */
  queue: string;
  /** Deliveries held: running plus waiting for a slot. */
  inHand: number;
  /** Unacked deliveries the broker may hand them at once. */
  prefetch: number;
  /** Handlers they run at once. */
  concurrency: number;
  /** 1 when every one of them is consuming on a live connection and not stopping, else 0. */
  ready: 0 | 1;
}

/** Task names given their own label value: those seen to run, up to a cap. */
export class TaskNames {
  #known = new Set<string>();
  #max: number;

  /** Keeps at most `max` names. */
  constructor(max: number = DEFAULT_MAX_TASK_NAMES) {
    this.#max = max;
  }

  /** The label value of a task that ran: its name, learned if there is room. */
  ran(name: string | undefined): string {
    if (name === undefined) return OTHER_NAME;
    if (this.#known.has(name)) return name;
    if (this.#known.size >= this.#max) return OTHER_NAME;
    this.#known.add(name);
    return name;
  }

  /** The label value of a task that did not run: its name only if already learned. */
  of(name: string | undefined): string {
    return name !== undefined && this.#known.has(name) ? name : OTHER_NAME;
  }
}

/**
 * Watches workers for metrics: hands their task events to a {@linkcode TaskSink} and reads their
 * figures on demand. Any number of workers may be attached (each once).
 */
export class WorkerWatch implements WorkerObserver {
  #sink: TaskSink;
  #names: TaskNames;
  #workers = new Set<Worker>();
  /** Reconnects of the workers detached, by queue: a counter never goes back. */
  #retired = new Map<string, number>();

  /** A watch whose task events go to `sink`, with at most `maxTaskNames` task names. */
  constructor(sink: TaskSink, maxTaskNames: number = DEFAULT_MAX_TASK_NAMES) {
    if (!Number.isSafeInteger(maxTaskNames) || maxTaskNames < 0) {
      throw new RangeError(`Invalid maxTaskNames ${maxTaskNames}: expected a whole number ≥ 0`);
    }
    this.#sink = sink;
    this.#names = new TaskNames(maxTaskNames);
  }

  /** Starts watching `worker`; returns what stops it. */
  attach(worker: Worker): () => void {
    const queue = worker.queue;
    const sink = this.#sink;
    const names = this.#names;
    const detail = (event: Event) => (event as WorkerLifecycleEvent<TaskEvent>).detail;
    const onCompleted = (event: Event) => {
      const task = detail(event);
      const name = names.ran(task.name);
      sink.count("completed", queue, name);
      sink.duration(queue, name, (task.durationMs ?? 0) / 1000);
    };
    // A failed attempt that will be retried (the worker emits task.failed for nothing else).
    const onFailed = (event: Event) => {
      const task = detail(event);
      const name = names.ran(task.name);
      sink.count("failed", queue, name);
      sink.count("retried", queue, name);
      sink.duration(queue, name, (task.durationMs ?? 0) / 1000);
    };
    // Dead after a run (its last attempt failed, or failed for good) carries the run's duration;
    // dead without one never ran (not a task, no handler, deliveries used up).
    const onDead = (event: Event) => {
      const task = detail(event);
      if (task.durationMs === undefined) {
        sink.count("dead", queue, names.of(task.name));
        return;
      }
      const name = names.ran(task.name);
      sink.count("failed", queue, name);
      sink.duration(queue, name, task.durationMs / 1000);
      sink.count("dead", queue, name);
    };
    worker.addEventListener("task.completed", onCompleted);
    worker.addEventListener("task.failed", onFailed);
    worker.addEventListener("task.dead", onDead);
    this.#workers.add(worker);
    let attached = true;
    return () => {
      if (!attached) return;
      attached = false;
      worker.removeEventListener("task.completed", onCompleted);
      worker.removeEventListener("task.failed", onFailed);
      worker.removeEventListener("task.dead", onDead);
      this.#workers.delete(worker);
      this.#retired.set(queue, (this.#retired.get(queue) ?? 0) + worker.reconnects);
    };
  }

  /** The figures of the attached workers, one entry per queue. */
  figures(): QueueFigures[] {
    const byQueue = new Map<string, QueueFigures>();
    for (const worker of this.#workers) {
      const figures = byQueue.get(worker.queue) ??
        { queue: worker.queue, inHand: 0, prefetch: 0, concurrency: 0, ready: 1 };
      figures.inHand += worker.inHand;
      figures.prefetch += worker.prefetch;
      figures.concurrency += worker.concurrency;
      if (!worker.ready) figures.ready = 0;
      byQueue.set(worker.queue, figures);
    }
    return [...byQueue.values()];
  }

  /** Reconnects by queue: of the attached workers, plus those of the workers detached. */
  reconnects(): Map<string, number> {
    const total = new Map(this.#retired);
    for (const worker of this.#workers) {
      total.set(worker.queue, (total.get(worker.queue) ?? 0) + worker.reconnects);
    }
    return total;
  }
}
