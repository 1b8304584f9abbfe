/**
 * The events a worker publishes to the topic exchange `<queue>.events`, with the event type as
 * routing key. `produce --wait`, the demo, `status` and the tests observe the system through them.
 * @module
 */

import type { Channel } from "amqplib";

/** Every event type, in the order they happen in a task's life. */
export const EVENT_TYPES = [
  "worker.online",
  "worker.status",
  "task.started",
  "task.completed",
  "task.failed",
  "task.dead",
  "worker.offline",
] as const;

/** One of {@linkcode EVENT_TYPES}. */
export type EventType = typeof EVENT_TYPES[number];

/** Fields every event has. */
export interface BaseEvent {
  /** What happened. */
  type: EventType;
  /** The worker's name (`--name`, default `<hostname>-<pid>`). */
  worker: string;
  /** When it happened, as an ISO 8601 string. */
  at: string;
}

/** How often a worker publishes `worker.status`, in ms. */
export const STATUS_INTERVAL_MS = 2_000;

/** A worker started consuming, reports its state (every {@linkcode STATUS_INTERVAL_MS}), or stopped. */
export interface WorkerEvent extends BaseEvent {
  type: "worker.online" | "worker.status" | "worker.offline";
  /** Deliveries the worker holds unacked: running plus waiting for a free slot. */
  inHand?: number;
  /** Tasks completed since the worker started. */
  completed?: number;
  /** Failed attempts since the worker started. */
  failed?: number;
  /** Tasks completed in the last minute. */
  lastMinute?: number;
}

/** Something happened to one delivery of a task. */
export interface TaskEvent extends BaseEvent {
  type: "task.started" | "task.completed" | "task.failed" | "task.dead";
  /** The task's id (also the message's `messageId`). */
  taskId: string;
  /** The task's sequence number within its producer run. */
  seq: number;
  /** 1 for a first delivery, counting every delivery since, retries included. */
  attempt: number;
  /** Whether the broker flagged this delivery as a redelivery. */
  redelivered: boolean;
  /** How long the handler ran (`task.completed`, `task.failed`). */
  durationMs?: number;
  /** Why the attempt failed or the task was dead-lettered (`task.failed`, `task.dead`). */
  reason?: string;
}

/** Any event on the stream. */
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
  return { type, worker, at: new Date().toISOString(), ...fields };
}

/** Options of {@linkcode subscribeEvents}. */
export interface SubscribeOptions {
  /** Routing-key pattern of the events wanted. @default {"#"} */
  pattern?: string;
  /**
   * Name of the subscription queue. A named queue is durable and outlives a dropped connection
   * or a broker restart (the broker deletes it after a minute unused), so a reconnecting
   * subscriber misses nothing published while it was away.
   * @default {an exclusive server-named queue}
   */
  queueName?: string;
}

/**
 * Subscribes to the events of `queue` on `channel` and calls `onEvent` for each one; bodies that
 * are not events are ignored. Resolves once the subscription is in place, so nothing published
 * after that is missed.
 *
 * @example
 * ```ts
 * await subscribeEvents(channel, "tareas_distribuidas", (event) => seen.push(event));
 * ```
 */
export async function subscribeEvents(
  channel: Channel,
  queue: string,
  onEvent: (event: TareasEvent) => void,
  options: SubscribeOptions = {},
): Promise<void> {
  const exchange = eventsExchange(queue);
  await channel.assertExchange(exchange, "topic", { durable: true });
  const { queue: name } = options.queueName
    ? await channel.assertQueue(options.queueName, {
      // Durable: a broker restart keeps it and its binding, so events published before this
      // subscriber reconnects wait for it.
      durable: true,
      arguments: { "x-expires": 60_000 },
    })
    : await channel.assertQueue("", { exclusive: true, autoDelete: true });
  await channel.bindQueue(name, exchange, options.pattern ?? "#");
  await channel.consume(name, (message) => {
    if (message === null) return;
    const event = parseEvent(message.content);
    if (event) onEvent(event);
  }, { noAck: true });
}

/** Parses an event body, or returns undefined when it is not one. */
export function parseEvent(body: Uint8Array): TareasEvent | undefined {
  try {
    const value = JSON.parse(new TextDecoder().decode(body));
    if (
      typeof value === "object" && value !== null && EVENT_TYPES.includes(value.type) &&
      typeof value.worker === "string" && typeof value.at === "string"
    ) {
      return value as TareasEvent;
    }
  } catch {
    // Not JSON: not an event.
  }
  return undefined;
}
