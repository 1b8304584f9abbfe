/**
 * Reading the events of `<queue>.events`: the one door through which an event enters an observer.
 * Anyone who can publish to the broker can publish there too, so every body is parsed into the
 * full schema of `core/events.ts`, and whatever does not fit is ignored (and counted). A worker
 * only writes events; `watch.ts`, the tests and the benchmarks read them through here.
 * @module
 */
import type { Channel } from "../deps/amqplib.ts";
import {
  EVENT_TYPES,
  eventsExchange,
  type EventType,
  MAX_EVENT_BYTES,
  MAX_NAME,
  MAX_REASON,
  type TareasEvent,
  type TaskEvent,
  type WorkerEvent,
} from "../core/events.ts";
import { log } from "../core/log.ts";
import { MAX_PROGRESS_BYTES } from "../core/results.ts";

/** How many message bodies readers ignored, by reason, since the process started. */
export const ignoredEvents: Record<"tooLarge" | "notJson" | "notAnEvent", number> = {
  tooLarge: 0,
  notJson: 0,
  notAnEvent: 0,
};

/**
 * Parses an event message body (one event, or an array of events) into checked events. Bodies
 * larger than `MAX_EVENT_BYTES`, bodies that are not JSON, and entries that do not fit the schema
 * are ignored, counted in {@linkcode ignoredEvents} and logged at debug level. Fields outside the
 * schema are dropped.
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

/** One decoded JSON value as a checked event with the schema's fields only, or undefined. */
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
  if (v.name !== undefined) {
    if (!isName(v.name)) return undefined;
    event.name = v.name;
  }
  if (v.progress !== undefined) {
    if (!isProgress(v.progress)) return undefined;
    event.progress = v.progress;
  }
  return event;
}

/** A fraction from 0 to 1, or an object of at most {@linkcode MAX_PROGRESS_BYTES} as JSON. */
function isProgress(value: unknown): value is number | Record<string, unknown> {
  if (typeof value === "number") return value >= 0 && value <= 1;
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    JSON.stringify(value).length <= MAX_PROGRESS_BYTES;
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

/**
 * The ids of the event messages a subscriber has taken, the last 10,000 of them: pass the same
 * instance to every {@linkcode subscribeEvents} of one subscriber (across reconnects), so that a
 * message delivered again is taken once.
 *
 * @example
 * ```ts
 * const seen = new SeenMessages();
 * seen.add("m1"); // true
 * seen.add("m1"); // false: taken already
 * ```
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

/**
 * Options of {@linkcode subscribeEvents} and {@linkcode consumeEvents}.
 *
 * @example
 * ```ts
 * const options: SubscribeOptions = { pattern: "task.*", declare: false };
 * ```
 */
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
  /**
   * The message ids taken so far, shared by the subscriptions of one subscriber.
   * @default {new ones}
   */
  seen?: SeenMessages;
  /**
   * Called when the broker cancels the subscription; subscribe again (for example, close the
   * connection and let its recovery set things up anew). @default {nothing}
   */
  onCancel?: () => void;
  /**
   * Most messages delivered and not yet acked. A durable subscription, or one given this, acks
   * each message once it is taken (see {@linkcode consumeEvents}), so a reader slower than the
   * events leaves the rest on the broker; a server-named one without it takes no acks.
   * @default {1000 for a durable subscription; none}
   */
  prefetch?: number;
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
  await consumeEvents(channel, queue, (events, taken) => {
    for (const event of events) onEvent(event);
    taken();
  }, options);
}

/**
 * {@linkcode subscribeEvents} one message at a time: `onMessage` gets the checked events of each
 * message not seen before, and `taken`, to call once they are dealt with: it acks the message
 * (when the subscription takes acks), so that a message whose events were not taken yet when the
 * connection was lost is delivered again. Resolves once the subscription is in place.
 *
 * @example
 * ```ts
 * await consumeEvents(channel, queue, (events, taken) => {
 *   pending.push(...events);
 *   whenRead(taken);
 * }, { prefetch: 100 });
 * ```
 */
export async function consumeEvents(
  channel: Channel,
  queue: string,
  onMessage: (events: TareasEvent[], taken: () => void) => void,
  options: SubscribeOptions = {},
): Promise<void> {
  const exchange = eventsExchange(queue);
  if (options.declare === false) await channel.checkExchange(exchange);
  else await channel.assertExchange(exchange, "topic", { durable: true });
  const durable = options.queueName !== undefined;
  const { queue: name } = durable
    ? await channel.assertQueue(options.queueName!, {
      // Durable and replicated: a broker restart, or the loss of a cluster node, keeps it and
      // its binding, so events published before this subscriber reconnects wait for it.
      durable: true,
      arguments: { "x-queue-type": "quorum", "x-expires": 60_000 },
    })
    : await channel.assertQueue("", { exclusive: true, autoDelete: true });
  await channel.bindQueue(name, exchange, options.pattern ?? "#");
  // Acked, events in flight to a connection that is lost are delivered again to the next one; a
  // server-named queue without a prefetch dies with its connection and takes no acks.
  const acks = durable || options.prefetch !== undefined;
  if (acks) await channel.prefetch(options.prefetch ?? 1_000);
  const seen = options.seen ?? new SeenMessages();
  await channel.consume(name, (message) => {
    if (message === null) {
      // The broker cancelled the subscription (its queue deleted, or moved by a cluster).
      log("events").warn("The broker cancelled the subscription to the events of {queue}", {
        queue,
      });
      return options.onCancel?.();
    }
    const taken = acks
      ? () => {
        try {
          channel.ack(message);
        } catch {
          // The channel closed meanwhile: the broker delivers the message again on the next.
        }
      }
      : () => {};
    // A message published again after its confirm was lost, or delivered again after a lost
    // connection, arrives twice: take it once.
    const id = message.properties.messageId;
    if (typeof id === "string" && !seen.add(id)) return taken();
    const events = parseEvents(message.content);
    if (events.length === 0) return taken();
    onMessage(events, taken);
  }, { noAck: !acks });
}
