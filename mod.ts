/**
 * tareas: a task queue for Deno on RabbitMQ that keeps tasks through crashes. Tasks are
 * persistent messages in a durable quorum queue, published with broker confirms; workers ack a
 * task only once its handler has finished, so a task held by a worker that dies is handed to
 * another. Failing tasks are retried with backoff, then dead-lettered with their reason. Tasks may
 * be named (each name its handler), delayed (up to 38 days, in the broker), and waited for
 * (`producer.call` resolves with the handler's result); handlers report progress and may fail a
 * task for good (`PermanentError`).
 *
 * This module is the core. What watches a queue and what acts on it are subpath exports:
 * `./events` (watch a queue's events and counts), `./monitor` (the model behind `status`),
 * `./dead-letters`, `./dashboard`.
 *
 * @example Enqueue tasks and run them in the same program
 * ```ts
 * import { createProducer, createWorker } from "./mod.ts";
 *
 * type Resize = { image: string; width: number };
 *
 * await using worker = await createWorker<Resize>({
 *   queue: "images",
 *   concurrency: 4,
 *   handler: async (task, { signal }) => {
 *     await fetch(`https://images.example/${task.payload.image}?w=${task.payload.width}`, {
 *       signal,
 *     });
 *   },
 * });
 * await using producer = await createProducer({ queue: "images" });
 * await producer.enqueue({ image: "cat.png", width: 200 }, { id: "cat.png@200" });
 * ```
 * @module
 */
export {
  createWorker,
  type Worker,
  type WorkerEventMap,
  WorkerLifecycleEvent,
  type WorkerObserver,
  type WorkerOptions,
} from "./lib/core/worker/mod.ts";
export {
  type CallOptions,
  createProducer,
  type EnqueueManyOptions,
  type EnqueueOptions,
  type Producer,
  type ProducerOptions,
} from "./lib/core/producer/mod.ts";
export {
  sleepHandler,
  type TaskContext,
  type TaskHandler,
  type TaskLogger,
} from "./lib/core/handler.ts";
export type { Task } from "./lib/core/task.ts";
export type { Progress, TaskResult } from "./lib/core/results.ts";
export {
  type BaseEvent,
  EVENT_TYPES,
  type EventType,
  type TareasEvent,
  type TaskEvent,
  type WorkerEvent,
} from "./lib/core/events.ts";
export {
  BrokerUnreachableError,
  ConfigError,
  ConnectionLostError,
  isPermanentError,
  PermanentError,
  TareasError,
  TaskDeadError,
  TaskFormatError,
  TaskTimeoutError,
  UsageError,
} from "./lib/core/errors.ts";
export { deadQueue, DEFAULT_QUEUE } from "./lib/core/topology.ts";
export { DEFAULT_URL } from "./lib/core/url.ts";
