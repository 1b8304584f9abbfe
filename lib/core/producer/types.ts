/**
 * The producer's public face: its options, what `enqueue` and `call` take, and the `Producer`.
 * @module
 */
import type { Progress, TaskResult } from "../results.ts";
import type { Task } from "../task.ts";

/**
 * Options of {@linkcode createProducer}.
 *
 * @example
 * ```ts
 * const options: ProducerOptions = { url: "amqp://u:p@h1,amqp://u:p@h2", queue: "images" };
 * await using producer = await createProducer(options);
 * ```
 */
export interface ProducerOptions {
  /** Broker URL; its password is never printed. @default {"amqp://guest:guest@127.0.0.1:5672"} */
  url?: string;
  /** Work queue; declared (with its dead-letter queue) if it does not exist. @default {"tareas_distribuidas"} */
  queue?: string;
  /** AMQP heartbeat in seconds, 0 to disable. @default {15} */
  heartbeat?: number;
  /** Connection name shown by the broker's management tools. @default {"tareas producer"} */
  name?: string;
  /**
   * Someone waits for these tasks' completions, as `produce --wait` does: their worker publishes
   * each one's `task.completed` (or `task.dead`) before its ack even while it has seen nobody
   * listen, so that a worker killed right after an ack cannot leave the waiter without it.
   * @default {false}
   */
  awaited?: boolean;
  /**
   * Hears how each task of this producer ended: every task then carries this producer's reply
   * queue, and its worker sends it the handler's result (or why the task died) before acking it.
   * Each task is heard of once, also when a worker killed after sending it ran the task again.
   * @default {none: results are only sent to `call`}
   */
  onResult?: (result: TaskResult) => void;
}

/**
 * Options of {@linkcode Producer.enqueue}.
 *
 * @example
 * ```ts
 * await producer.enqueue({ orderId: 42 }, { id: "invoice-42" }); // the same id twice: one task
 * ```
 */
export interface EnqueueOptions {
  /**
   * The task id, for example an idempotency key: the worker's handler sees it as `task.id`, and
   * a task published again after a reconnect keeps it. @default {a random UUID}
   */
  id?: string;
  /** Position of the task within a run, shown in events and timelines. @default {0} */
  seq?: number;
  /** Seconds of simulated work, for the built-in handler. @default {0} */
  complexity?: number;
  /**
   * The task's name, which picks its handler on the worker (`createWorker({ handlers })`).
   * @default {"default"}
   */
  name?: string;
  /**
   * Milliseconds to wait before the task may run, up to 38 days: it waits in the broker (a
   * replicated queue), and starts no earlier than that, rounded up to 100 ms. @default {0}
   */
  delay?: number;
  /** When the task may run; like `delay`, counted from when it is published. @default {now} */
  runAt?: Date;
}

/**
 * Options of {@linkcode Producer.call}.
 *
 * @example
 * ```ts
 * const size = await producer.call<{ width: number }>({ image: "cat.png" }, {
 *   name: "measure",
 *   timeout: 30_000,
 *   onProgress: (progress) => console.log(progress),
 * });
 * ```
 */
export interface CallOptions extends EnqueueOptions {
  /** Gives up waiting after this many ms (the task itself goes on). @default {no limit} */
  timeout?: number;
  /** Aborting it gives up waiting (the task itself goes on). */
  signal?: AbortSignal;
  /** Hears the task's progress reports (`ctx.progress`), at most every 100 ms. */
  onProgress?: (progress: Progress) => void;
}

/**
 * Options of {@linkcode Producer.enqueueMany}.
 *
 * @example
 * ```ts
 * await producer.enqueueMany(["a.png", "b.png"], { options: (image) => ({ id: `resize-${image}` }) });
 * ```
 */
export interface EnqueueManyOptions<P> {
  /** Options of each task, from its payload and its index in `payloads`. @default {none} */
  options?: (payload: P, index: number) => EnqueueOptions;
}

/**
 * A producer; see {@linkcode createProducer}.
 *
 * @example
 * ```ts
 * await using producer = await createProducer({ queue: "images" });
 * const task = await producer.enqueue({ image: "cat.png" });
 * console.log(`confirmed ${task.id}`);
 * ```
 */
export interface Producer extends AsyncDisposable {
  /** The work queue it publishes to. */
  readonly queue: string;
  /**
   * Publishes one task carrying `payload` (any JSON value) and resolves with it once the broker
   * has confirmed it.
   *
   * @throws {TaskFormatError} when the payload is not JSON or an option is out of range.
   * @throws {TareasError} when the broker refuses the task, or the producer is closed first.
   */
  enqueue<P>(payload: P, options?: EnqueueOptions): Promise<Task<P>>;
  /**
   * Publishes one task per payload, pipelined (publishing goes on while confirms come back, with
   * back-pressure), and resolves with the tasks once the broker has confirmed them all.
   * `payloads` may be an async iterable; it is read only as fast as the broker takes tasks.
   *
   * @throws the first error (a payload that is not JSON, a refused task, or the iterable's own),
   * once every task published before it has been confirmed; the other payloads are still published.
   */
  enqueueMany<P>(
    payloads: Iterable<P> | AsyncIterable<P>,
    options?: EnqueueManyOptions<P>,
  ): Promise<Task<P>[]>;
  /**
   * Enqueues a task and resolves with its result: what its handler returned (JSON). Like
   * Celery's `AsyncResult.get()` or BullMQ's `waitUntilFinished`. The result reaches the caller
   * through a durable reply queue of this producer, so it arrives even when the worker running the
   * task is killed (the rerun's result arrives, once) or this producer's connection drops and
   * comes back meanwhile.
   *
   * @throws {TaskDeadError} when the task is dead-lettered (its reason in `reason`).
   * @throws the signal's reason when `signal` aborts or `timeout` passes first (a DOMException
   *   named `TimeoutError` for the timeout).
   */
  call<R = unknown, P = unknown>(payload: P, options?: CallOptions): Promise<R>;
  /**
   * Closes the connection. Tasks enqueued and not yet confirmed are rejected (await `enqueue`
   * first), and so are calls still waiting for their result. Idempotent.
   */
  close(): Promise<void>;
}
