/**
 * RabbitMQ helpers for the benchmark: connections, the floor's plain quorum queue, cleanup, the
 * broker version, and an event tap that reads a tareas queue's events exchange.
 * @module
 */
import amqp from "../lib/deps/amqplib.ts";
import type { Channel, ChannelModel } from "../lib/deps/amqplib.ts";
import type { TareasEvent } from "../lib/core/events.ts";
import { subscribeEvents } from "../lib/observe/subscribe.ts";
import { workQueueArguments } from "../lib/core/topology.ts";
import { BenchTimeoutError, nowMs } from "./_util.ts";

/** Opens a connection and logs nothing: the benchmark reports failures itself. */
export async function connect(url: string): Promise<ChannelModel> {
  const connection = await amqp.connect(url);
  connection.on("error", () => {}); // a close with an error also emits "close"; reported by callers
  return connection;
}

/** The broker's product and version, e.g. `RabbitMQ 3.10.8`. */
export async function brokerVersion(url: string): Promise<string> {
  const connection = await connect(url);
  try {
    const props = (connection as unknown as {
      connection: { serverProperties?: Record<string, unknown> };
    }).connection.serverProperties ?? {};
    return `${props.product ?? "?"} ${props.version ?? "?"}`;
  } finally {
    await connection.close();
  }
}

/**
 * Declares the floor's queue: a durable quorum queue with exactly the arguments of tareas' work
 * queue (delivery limit, at-least-once dead-lettering, reject-publish), so that the floor and ours
 * run on the same queue.
 */
export async function declareFloorQueue(channel: Channel, queue: string): Promise<void> {
  await channel.assertQueue(queue, { durable: true, arguments: workQueueArguments(queue) });
}

/**
 * Deletes queues and exchanges by name on a fresh channel each, ignoring the ones that do not
 * exist (a failed delete closes the channel, so each gets its own).
 */
export async function deleteAll(
  connection: ChannelModel,
  names: { queues?: string[]; exchanges?: string[] },
): Promise<void> {
  for (const queue of names.queues ?? []) {
    await onFreshChannel(connection, (ch) => ch.deleteQueue(queue));
  }
  for (const exchange of names.exchanges ?? []) {
    await onFreshChannel(connection, (ch) => ch.deleteExchange(exchange));
  }
}

async function onFreshChannel(
  connection: ChannelModel,
  action: (channel: Channel) => Promise<unknown>,
): Promise<void> {
  let channel: Channel | undefined;
  try {
    channel = await connection.createChannel();
    channel.on("error", () => {});
    await action(channel);
  } catch {
    // Not there or already gone: nothing to clean.
  } finally {
    try {
      await channel?.close();
    } catch {
      // Closed by the broker after a failed operation.
    }
  }
}

/** An event received by an {@linkcode EventTap}, with the time it arrived. */
export interface TappedEvent {
  /** The decoded event. */
  event: TareasEvent;
  /** When the tap received it ({@linkcode nowMs}). */
  at: number;
}

/** Options of {@linkcode EventTap.waitFor}. */
export interface EventWaitOptions {
  /** Give up after this many ms. */
  timeoutMs: number;
  /** What is awaited, for the error message. */
  what: string;
  /** Ignore kept events received before this time ({@linkcode nowMs}). @default {-Infinity} */
  since?: number;
}

interface EventWaiter {
  match: (e: TappedEvent) => boolean;
  resolve: (e: TappedEvent) => void;
  reject: (error: Error) => void;
}

/** Options for {@linkcode EventTap.open}. */
export interface EventTapOptions {
  /** Routing keys (event types) to bind. @default ["#"] */
  keys?: string[];
  /** How many recent events to keep for waiters registered late. @default 1000 */
  keep?: number;
  /**
   * Read the events through this durable queue (created if missing; the broker deletes it after
   * a minute unused) rather than exclusive ones, so that events published while the tap is
   * disconnected wait for {@linkcode EventTap.attach}. @default {exclusive server-named queues}
   */
  queueName?: string;
}

/**
 * The events of a tareas queue as the benchmark receives them, each with its arrival time, read
 * through `subscribeEvents` (exclusive queues, no acks).
 *
 * @example
 * ```ts
 * const tap = await EventTap.open(connection, "Q", { keys: ["worker.online"] });
 * const online = await tap.waitFor((e) => e.event.type === "worker.online", {
 *   timeoutMs: 30_000,
 *   what: "worker.online",
 * });
 * ```
 */
export class EventTap {
  #channel: Channel | undefined;
  #recent: TappedEvent[] = [];
  #queue: string;
  #options: EventTapOptions;
  #waiters = new Set<EventWaiter>();
  #listeners = new Set<(e: TappedEvent) => void>();
  #closed: Promise<void> | undefined;

  private constructor(queue: string, options: EventTapOptions) {
    this.#queue = queue;
    this.#options = options;
  }

  /**
   * Subscribes to the events of tareas queue `queue` on `connection` (through `subscribeEvents`,
   * one subscription per routing key) and starts receiving them.
   */
  static async open(
    connection: ChannelModel,
    queue: string,
    options: EventTapOptions = {},
  ): Promise<EventTap> {
    const tap = new EventTap(queue, options);
    await tap.attach(connection);
    return tap;
  }

  /**
   * Subscribes again on `connection` (after the previous one was lost), keeping the recent
   * events, the listeners and the pending waits.
   */
  async attach(connection: ChannelModel): Promise<void> {
    const old = this.#channel;
    this.#channel = undefined;
    await old?.close().catch(() => {});
    const channel = await connection.createChannel();
    channel.on("error", () => {});
    const { queueName } = this.#options;
    for (const pattern of this.#options.keys ?? ["#"]) {
      await subscribeEvents(channel, this.#queue, (event) => this.#receive(event), {
        pattern,
        ...(queueName === undefined ? {} : { queueName }),
      });
    }
    this.#channel = channel;
  }

  #receive(event: TareasEvent): void {
    const tapped: TappedEvent = { event, at: nowMs() };
    this.#recent.push(tapped);
    if (this.#recent.length > (this.#options.keep ?? 1000)) this.#recent.shift();
    for (const listener of this.#listeners) listener(tapped);
    for (const waiter of this.#waiters) {
      if (waiter.match(tapped)) {
        this.#waiters.delete(waiter);
        waiter.resolve(tapped);
      }
    }
  }

  /** Calls `listener` for every further event. Returns a function that removes it. */
  onEvent(listener: (e: TappedEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Waits for an event for which `match` holds, looking first at the recent events kept (those
   * received at or after `options.since`). Rejects with a {@linkcode BenchTimeoutError} naming
   * `options.what` after `options.timeoutMs`.
   */
  waitFor(match: (e: TappedEvent) => boolean, options: EventWaitOptions): Promise<TappedEvent> {
    const { timeoutMs, what, since = -Infinity } = options;
    const seen = this.#recent.find((e) => e.at >= since && match(e));
    if (seen) return Promise.resolve(seen);
    const { promise, resolve, reject } = Promise.withResolvers<TappedEvent>();
    const waiter: EventWaiter = { match, resolve, reject };
    this.#waiters.add(waiter);
    const timer = setTimeout(() => {
      this.#waiters.delete(waiter);
      reject(new BenchTimeoutError(what, timeoutMs));
    }, timeoutMs);
    return promise.finally(() => clearTimeout(timer));
  }

  /** Closes the tap's channel (its queue goes with it) and fails pending waits. Idempotent. */
  close(): Promise<void> {
    for (const waiter of this.#waiters) waiter.reject(new Error("The event tap was closed"));
    this.#waiters.clear();
    this.#listeners.clear();
    this.#closed ??= this.#channel?.close().catch(() => {}) ?? Promise.resolve();
    return this.#closed;
  }

  /** Same as {@linkcode EventTap.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
