/**
 * The events workers publish to the topic exchange `<queue>.events`, with the event type as
 * routing key: their schema and how they are written. `produce --wait`, the demo, `status`, the
 * dashboard and the tests observe the system through them; they read them through
 * `lib/observe/subscribe.ts`, which checks every body against this schema.
 * @module
 */
import { Buffer } from "node:buffer";
import { isoTime } from "./clock.ts";

/**
 * Every event type, in the order they happen in a task's life.
 *
 * @example
 * ```ts
 * for (const type of EVENT_TYPES) console.log(type); // "worker.online", "worker.status", …
 * ```
 */
export const EVENT_TYPES = [
  "worker.online",
  "worker.status",
  "task.started",
  "task.progress",
  "task.completed",
  "task.failed",
  "task.dead",
  "worker.offline",
] as const;

/**
 * One of {@linkcode EVENT_TYPES}.
 *
 * @example
 * ```ts
 * const finished: EventType[] = ["task.completed", "task.dead"];
 * ```
 */
export type EventType = typeof EVENT_TYPES[number];

/**
 * Fields every event has.
 *
 * @example
 * ```ts
 * const describe = (event: BaseEvent) => `${event.at} ${event.worker} ${event.type}`;
 * ```
 */
export interface BaseEvent {
  /** What happened. */
  type: EventType;
  /** The worker's name (`--name`, default `<hostname>-<pid>`). */
  worker: string;
  /** When it happened, as an ISO 8601 string. */
  at: string;
}

/** How often a worker publishes `worker.status`, in ms. */
export const STATUS_INTERVAL_MS = 1_000;

/**
 * A worker started consuming, reports its state (every {@linkcode STATUS_INTERVAL_MS}), or stopped.
 *
 * @example
 * ```ts
 * const busy = (event: WorkerEvent) => event.type === "worker.status" && (event.inHand ?? 0) > 0;
 * ```
 */
export interface WorkerEvent extends BaseEvent {
  /** Which of the worker's events. */
  type: "worker.online" | "worker.status" | "worker.offline";
  /** Deliveries the worker holds unacked: running plus waiting for a free slot. */
  inHand?: number;
  /** Tasks completed since the worker started. */
  completed?: number;
  /** Failed attempts since the worker started. */
  failed?: number;
  /** Tasks completed in the last minute. */
  lastMinute?: number;
  /** The broker node the worker is connected to, when known. */
  node?: string;
}

/**
 * Something happened to one delivery of a task.
 *
 * @example
 * ```ts
 * const late = (event: TaskEvent) => event.type === "task.completed" && event.attempt > 1;
 * ```
 */
export interface TaskEvent extends BaseEvent {
  /** Which of the task's events. */
  type: "task.started" | "task.progress" | "task.completed" | "task.failed" | "task.dead";
  /** The task's id (also the message's `messageId`). */
  taskId: string;
  /** The task's name (the message's `type`); absent for a message that is not a task. */
  name?: string;
  /** The task's sequence number within its producer run (0 when it has none). */
  seq: number;
  /** 1 for a first delivery, counting every delivery since, retries included. */
  attempt: number;
  /** Whether the broker flagged this delivery as a redelivery. */
  redelivered: boolean;
  /** How long the handler ran (`task.completed`, `task.failed`, `task.dead` after a run). */
  durationMs?: number;
  /** Why the attempt failed or the task was dead-lettered (`task.failed`, `task.dead`). */
  reason?: string;
  /** How far the task has come (`task.progress`): a fraction from 0 to 1, or a small object. */
  progress?: number | Record<string, unknown>;
}

/**
 * Any event on the stream.
 *
 * @example
 * ```ts
 * const describe = (event: TareasEvent) =>
 *   event.type === "task.dead" ? `${event.taskId}: ${event.reason}` : event.type;
 * ```
 */
export type TareasEvent = WorkerEvent | TaskEvent;

/** Name of the topic exchange that carries the events of `queue`. */
export function eventsExchange(queue: string): string {
  return `${queue}.events`;
}

/** Whether an event concerns a task. */
export function isTaskEvent(event: TareasEvent): event is TaskEvent {
  return event.type.startsWith("task.");
}

/** Builds a worker event stamped with the current time. */
export function workerEvent(
  type: WorkerEvent["type"],
  worker: string,
  fields: Omit<WorkerEvent, "type" | "worker" | "at"> = {},
): WorkerEvent {
  return { type, worker, at: isoTime(), ...fields };
}

/** Largest event message body a reader accepts; anything larger is ignored unread. */
export const MAX_EVENT_BYTES = 64 * 1024;

/** Longest string field an event may carry (names, ids, node); reasons get {@linkcode MAX_REASON}. */
export const MAX_NAME = 200;

/** Longest failure reason an event may carry; longer reasons are cut when published. */
export const MAX_REASON = 2_000;

/** Encodes events of one type as one message body: the event, or an array of several. */
export function encodeEvents(events: readonly TareasEvent[]): Buffer {
  return Buffer.from(JSON.stringify(events.length === 1 ? events[0] : events));
}
