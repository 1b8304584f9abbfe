/**
 * tareas: a task queue for Deno on RabbitMQ that keeps tasks through crashes. Tasks are
 * persistent messages in a durable quorum queue, published with broker confirms; workers ack a
 * task only once its handler has finished, so a task held by a worker that dies is handed to
 * another. Failing tasks are retried with backoff, then dead-lettered with their reason.
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
  type WorkerOptions,
} from "./lib/core/worker/mod.ts";
export {
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
export {
  type BaseEvent,
  EVENT_TYPES,
  type EventType,
  type TareasEvent,
  type TaskEvent,
  type WorkerEvent,
} from "./lib/core/events.ts";
export {
  type QueueCounts,
  type QueueState,
  type QueueWatcher,
  type WatchOptions,
  watchQueue,
  type WatchUpdate,
} from "./lib/observe/watch.ts";
export {
  type MonitorOptions,
  type MonitorSnapshot,
  QueueMonitor,
  type WorkerState,
  type WorkerView,
} from "./lib/observe/monitor.ts";
export {
  type DeadLetter,
  type DeadLetters,
  type DeadLettersOptions,
  openDeadLetters,
  type PassOptions,
  type PassResult,
} from "./lib/operate/dead_letters.ts";
export {
  type Dashboard,
  type DashboardOptions,
  startDashboard,
} from "./lib/operate/dashboard/mod.ts";
export {
  BrokerUnreachableError,
  ConfigError,
  ConnectionLostError,
  TareasError,
  TaskFormatError,
  TaskTimeoutError,
  UsageError,
} from "./lib/core/errors.ts";
export { deadQueue, DEFAULT_QUEUE } from "./lib/core/topology.ts";
export { DEFAULT_URL } from "./lib/core/url.ts";
