/**
 * The worker's public face: its options, its lifecycle events and the `Worker` it returns.
 * @module
 */
import type { TareasEvent, TaskEvent, WorkerEvent } from "../events.ts";
import type { TaskHandler } from "../handler.ts";

/** RabbitMQ's default consumer timeout: a delivery unacked for longer closes the channel. */
export const BROKER_CONSUMER_TIMEOUT_MS = 30 * 60_000;

/**
 * Options of {@linkcode createWorker}.
 *
 * @example
 * ```ts
 * const options: WorkerOptions<{ url: string }> = {
 *   queue: "downloads",
 *   concurrency: 8,
 *   taskTimeout: 30_000,
 *   handler: (task, { signal }) => fetch(task.payload.url, { signal }),
 * };
 * await using worker = await createWorker(options);
 * ```
 */
export interface WorkerOptions<P = unknown> {
  /** Runs each task: resolve when it is done, throw to fail the attempt. */
  handler?: TaskHandler<P>;
  /**
   * Handlers by task name (`Task.name`, the message's `type`): a task whose name has none here is
   * dead-lettered with the reason `no handler for task "x"`. `handler` is the one of the
   * `"default"` name. Give `handler`, `handlers` or both.
   */
  handlers?: Record<string, TaskHandler<never>>;
  /** Broker URL; its password is never printed. @default {"amqp://guest:guest@127.0.0.1:5672"} */
  url?: string;
  /** Work queue. @default {"tareas_distribuidas"} */
  queue?: string;
  /** Handlers running at once. @default {1} */
  concurrency?: number;
  /** Unacked deliveries the broker may hand this worker at once (≥ concurrency). @default {concurrency} */
  prefetch?: number;
  /** Attempts before a failing task is dead-lettered. @default {5} */
  maxAttempts?: number;
  /** Delay before the first retry, in milliseconds; it doubles on each retry, up to an hour. @default {1000} */
  retryDelay?: number;
  /** Longest a handler may run, in milliseconds, 0 for no limit. @default {600_000} */
  taskTimeout?: number;
  /** Largest message body accepted, in bytes; larger ones are dead-lettered. @default {1_048_576} */
  maxBody?: number;
  /** Name in events and logs. @default {`<hostname>-<pid>`} */
  name?: string;
  /** AMQP heartbeat in seconds, 0 to disable. @default {15} */
  heartbeat?: number;
  /** Seconds of simulated work per unit of complexity, for the built-in handler. @default {1} */
  timeScale?: number;
  /** Aborting it closes the worker gracefully, as {@linkcode Worker.close} does. */
  signal?: AbortSignal;
  /**
   * Where the worker's measures go, for example the Prometheus endpoint of `serveMetrics` (from
   * `@tareas/tareas/metrics`): attached once the worker is created, detached when it closes.
   */
  metrics?: WorkerObserver;
}

/**
 * A lifecycle event of a worker: the same data it publishes on `<queue>.events`.
 *
 * @example
 * ```ts
 * worker.addEventListener("task.completed", (event: WorkerLifecycleEvent<TaskEvent>) => {
 *   console.log(`${event.detail.taskId} took ${event.detail.durationMs} ms`);
 * });
 * ```
 */
export class WorkerLifecycleEvent<E extends TareasEvent = TareasEvent> extends Event {
  /** The event as published. */
  readonly detail: E;

  /** Wraps a published event for local listeners. */
  constructor(detail: E) {
    super(detail.type);
    this.detail = detail;
  }
}

/**
 * The events a {@linkcode Worker} dispatches, by type.
 *
 * @example
 * ```ts
 * worker.addEventListener("task.failed", (e) => console.warn(e.detail.taskId, e.detail.reason));
 * ```
 */
export interface WorkerEventMap {
  /** Consuming (after the start and after every reconnect). */
  "worker.online": WorkerLifecycleEvent<WorkerEvent>;
  /** Periodic state report. */
  "worker.status": WorkerLifecycleEvent<WorkerEvent>;
  /** A handler started. */
  "task.started": WorkerLifecycleEvent<TaskEvent>;
  /** A handler finished; the task is acked right after. */
  "task.completed": WorkerLifecycleEvent<TaskEvent>;
  /** An attempt failed; the task will be retried. */
  "task.failed": WorkerLifecycleEvent<TaskEvent>;
  /** The task was dead-lettered, with its reason. */
  "task.dead": WorkerLifecycleEvent<TaskEvent>;
  /** Closed: no longer consuming, nothing in hand. */
  "worker.offline": WorkerLifecycleEvent<WorkerEvent>;
}

/**
 * A running worker; see {@linkcode createWorker}.
 *
 * @example
 * ```ts
 * const worker = await createWorker({ handler: (task) => console.log(task.payload) });
 * console.log(worker.name, worker.inHand);
 * await worker.close();
 * ```
 */
export interface Worker extends EventTarget, AsyncDisposable {
  /** The name in its events and logs. */
  readonly name: string;
  /** The work queue it consumes. */
  readonly queue: string;
  /** Deliveries held: running plus waiting for a free slot. */
  readonly inHand: number;
  /** Unacked deliveries the broker may hand it at once. */
  readonly prefetch: number;
  /** Handlers it runs at once. */
  readonly concurrency: number;
  /**
   * Whether it is consuming on a live connection and not stopping: false while it reconnects and
   * once `close()` began (what a readiness probe asks).
   */
  readonly ready: boolean;
  /** Times it connected again after losing its connection or its channels. */
  readonly reconnects: number;
  /**
   * Settles when the worker has stopped: resolves after {@linkcode Worker.close}, rejects when
   * its connection gave up for good (a configuration error).
   */
  readonly closed: Promise<void>;
  /**
   * Stops gracefully: stops consuming, lets the tasks in hand finish and acks them, publishes
   * `worker.offline`, closes the connection. Idempotent.
   */
  close(): Promise<void>;
  /** Listens to one of the worker's lifecycle events. */
  addEventListener<K extends keyof WorkerEventMap>(
    type: K,
    listener: (event: WorkerEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /** Listens to any event (EventTarget's signature). */
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
}

/**
 * Something that watches a worker through its public face (its properties and lifecycle events):
 * metrics, a health endpoint. `attach` is called once the worker is consuming, and what it
 * returns when the worker has closed.
 *
 * @example
 * ```ts
 * const log: WorkerObserver = {
 *   attach: (worker) => {
 *     const onDead = (e: Event) => console.warn((e as WorkerLifecycleEvent).detail);
 *     worker.addEventListener("task.dead", onDead);
 *     return () => worker.removeEventListener("task.dead", onDead);
 *   },
 * };
 * ```
 */
export interface WorkerObserver {
  /** Starts watching `worker`; returns what stops it. */
  attach(worker: Worker): () => void;
}
