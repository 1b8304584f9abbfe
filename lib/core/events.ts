/**
 * The events workers publish to the topic exchange `<queue>.events`, with the event type as
 * routing key: their schema, how they are written and how they are read, in one module.
 * `produce --wait`, the demo, `status`, the dashboard and the tests observe the system through
 * them. Anyone who can publish to the broker can publish there too, so reading parses every body
 * into the full schema and ignores (and counts) whatever does not fit.
 * @module
 */
import { Buffer } from "node:buffer";
import type { Channel } from "../deps/amqplib.ts";
import { isoTime } from "./clock.ts";
import { log } from "./log.ts";

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
  type: "task.started" | "task.completed" | "task.failed" | "task.dead";
  /** The task's id (also the message's `messageId`). */
  taskId: string;
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
}

/**
 * Any event on the stream.
 *
 * @example
 * ```ts
 * await using watch = await watchEvents({
 *   url,
 *   queue,
 *   onEvent: (event: TareasEvent) => {
 *     if (event.type === "task.dead") console.error(event.taskId, event.reason);
 *   },
 * });
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
const MAX_NAME = 200;

/** Longest failure reason an event may carry; longer reasons are cut when published. */
export const MAX_REASON = 2_000;

/** Encodes events of one type as one message body: the event, or an array of several. */
export function encodeEvents(events: readonly TareasEvent[]): Buffer {
  return Buffer.from(JSON.stringify(events.length === 1 ? events[0] : events));
}

/** How many message bodies readers ignored, by reason, since the process started. */
export const ignoredEvents: Record<"tooLarge" | "notJson" | "notAnEvent", number> = {
  tooLarge: 0,
  notJson: 0,
  notAnEvent: 0,
};

/**
 * Parses an event message body (one event, or an array of events) into checked events. Bodies
 * larger than {@linkcode MAX_EVENT_BYTES}, bodies that are not JSON, and entries that do not fit
 * the schema are ignored, counted in {@linkcode ignoredEvents} and logged at debug level. Fields
 * outside the schema are dropped.
 *
 * @example
 * ```ts
 * for (const event of parseEvents(message.content)) console.log(event.type, event.worker);
 * ```
 */
export function parseEvents(body: Uint8Array): TareasEvent[] {
  if (body.byteLength > MAX_EVENT_BYTES) {
    return ignore("tooLarge", `${body.byteLength} bytes`);
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(body));
  } catch {
    return ignore("notJson", "not JSON");
  }
  const events: TareasEvent[] = [];
  for (const entry of Array.isArray(value) ? value : [value]) {
    const event = checkEvent(entry);
    if (event) events.push(event);
    else ignore("notAnEvent", "does not fit the event schema");
  }
  return events;
}

function ignore(why: keyof typeof ignoredEvents, detail: string): [] {
  ignoredEvents[why]++;
  log("events").debug("Ignored a message on the events exchange: {detail}", { detail });
  return [];
}

function checkEvent(value: unknown): TareasEvent | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const type = v.type as EventType;
  if (!EVENT_TYPES.includes(type) || !isName(v.worker) || !isTime(v.at)) return undefined;
  if (type.startsWith("worker.")) {
    const event: WorkerEvent = { type: type as WorkerEvent["type"], worker: v.worker, at: v.at };
    for (const key of ["inHand", "completed", "failed", "lastMinute"] as const) {
      if (v[key] === undefined) continue;
      if (!isCount(v[key])) return undefined;
      event[key] = v[key];
    }
    if (v.node !== undefined) {
      if (!isName(v.node)) return undefined;
      event.node = v.node;
    }
    return event;
  }
  if (
    !isName(v.taskId) || !isCount(v.seq) || !isCount(v.attempt) || v.attempt < 1 ||
    typeof v.redelivered !== "boolean"
  ) {
    return undefined;
  }
  const event: TaskEvent = {
    type: type as TaskEvent["type"],
    worker: v.worker,
    at: v.at,
    taskId: v.taskId,
    seq: v.seq,
    attempt: v.attempt,
    redelivered: v.redelivered,
  };
  if (v.durationMs !== undefined) {
    if (typeof v.durationMs !== "number" || !(v.durationMs >= 0) || !isFinite(v.durationMs)) {
      return undefined;
    }
    event.durationMs = v.durationMs;
  }
  if (v.reason !== undefined) {
    if (typeof v.reason !== "string" || v.reason.length > MAX_REASON) return undefined;
    event.reason = v.reason;
  }
  return event;
}

function isName(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_NAME;
}

function isTime(value: unknown): value is string {
  return typeof value === "string" && value.length <= 40 && Number.isFinite(Date.parse(value));
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** Options of {@linkcode subscribeEvents}. */
export interface SubscribeOptions {
  /** Routing-key pattern of the events wanted. @default {"#"} */
  pattern?: string;
  /**
   * Name of the subscription queue. A named queue is a durable quorum queue that outlives a
   * dropped connection, a broker restart or a lost cluster node (the broker deletes it after a
   * minute unused), so a reconnecting subscriber misses nothing published while it was away.
   * @default {an exclusive server-named queue}
   */
  queueName?: string;
  /**
   * Declare the events exchange if it does not exist. Without, it is only checked (a passive
   * declare: the subscription then needs no configure permission on it, and creates nothing).
   * @default {true}
   */
  declare?: boolean;
  /** The message ids taken so far, shared by the subscriptions of one subscriber. @default {new ones} */
  seen?: SeenMessages;
  /**
   * Called when the broker cancels the subscription; subscribe again (for example, close the
   * connection and let its recovery set things up anew). @default {nothing}
   */
  onCancel?: () => void;
}

/**
 * Subscribes to the events of `queue` on `channel` and calls `onEvent` for each checked event
 * (see {@linkcode parseEvents}). Resolves once the subscription is in place, so nothing
 * published after that is missed.
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
  if (options.declare === false) await channel.checkExchange(exchange);
  else await channel.assertExchange(exchange, "topic", { durable: true });
  const { queue: name } = options.queueName
    ? await channel.assertQueue(options.queueName, {
      // Durable and replicated: a broker restart, or the loss of a cluster node, keeps it and
      // its binding, so events published before this subscriber reconnects wait for it.
      durable: true,
      arguments: { "x-queue-type": "quorum", "x-expires": 60_000 },
    })
    : await channel.assertQueue("", { exclusive: true, autoDelete: true });
  await channel.bindQueue(name, exchange, options.pattern ?? "#");
  // A durable subscription acks what it has read, so that events in flight to a connection that
  // is lost are delivered again to the next one; a server-named one dies with its connection.
  const durable = options.queueName !== undefined;
  if (durable) await channel.prefetch(1_000);
  const seen = options.seen ?? new SeenMessages();
  await channel.consume(name, (message) => {
    if (message === null) {
      // The broker cancelled the subscription (its queue deleted, or moved by a cluster).
      log("events").warn("The broker cancelled the subscription to the events of {queue}", {
        queue,
      });
      return options.onCancel?.();
    }
    // A message published again after its confirm was lost, or delivered again after a lost
    // connection, arrives twice: take it once.
    const id = message.properties.messageId;
    if (typeof id !== "string" || seen.add(id)) {
      for (const event of parseEvents(message.content)) onEvent(event);
    }
    if (durable) channel.ack(message);
  }, { noAck: !durable });
}

/**
 * The ids of the event messages a subscriber has taken, the last 10,000 of them: pass the same
 * instance to every {@linkcode subscribeEvents} of one subscriber (across reconnects), so that a
 * message delivered again is taken once.
 */
export class SeenMessages {
  #ids = new Set<string>();
  #size: number;

  /** Remembers up to `size` ids. */
  constructor(size = 10_000) {
    this.#size = size;
  }

  /** Adds `id`; false when it was seen already. */
  add(id: string): boolean {
    if (this.#ids.has(id)) return false;
    this.#ids.add(id);
    if (this.#ids.size > this.#size) this.#ids.delete(this.#ids.values().next().value!);
    return true;
  }
}
