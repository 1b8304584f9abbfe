/**
 * A channel and a connection without a broker, for the unit tests of what talks to amqplib (the
 * worker's parts, the event publisher). The fake records what is acked, rejected, declared and
 * published; the test plays the broker: it confirms a publish, refuses it (basic.nack), returns a
 * mandatory message no queue was bound to (basic.return, then the confirm), or closes the channel.
 * What amqplib does in those cases is copied from amqplib 2.3.1 (lib/channel.js): a closed
 * channel throws on every send and fails its unconfirmed publishes with "channel closed".
 * @module
 */
import { Buffer } from "node:buffer";
import { EventEmitter } from "node:events";
import type {
  Channel,
  ChannelModel,
  ConfirmChannel,
  ConsumeMessage,
  Options,
} from "../lib/deps/amqplib.ts";

/** A message published on a {@linkcode FakeChannel}. */
export interface Published {
  /** The exchange ("" for `sendToQueue`). */
  exchange: string;
  /** The routing key (the queue for `sendToQueue`). */
  routingKey: string;
  /** The body. */
  content: Buffer;
  /** The properties, as given. */
  options: Options.Publish;
  /** `pending` until the broker (the test) settles it; `lost` when the channel closed first. */
  state: "pending" | "confirmed" | "nacked" | "lost";
  /** The confirm callback, when one was given. */
  callback: ((error: unknown) => void) | undefined;
}

/** An ack or a nack, as the channel received it. */
export type Settlement =
  | { op: "ack"; message: unknown; allUpTo: boolean }
  | { op: "nack"; message: unknown; allUpTo: boolean; requeue: boolean };

/** A queue declaration, as the channel received it. */
export interface Declared {
  /** The queue's name. */
  queue: string;
  /** Its options. */
  options: Options.AssertQueue | undefined;
}

/** A channel (a confirm channel too) without a broker; see the module doc. */
export class FakeChannel extends EventEmitter {
  /** Acks and nacks, in order. */
  readonly settlements: Settlement[] = [];
  /** Every publish, in order. */
  readonly published: Published[] = [];
  /** Every queue declaration, in order. */
  readonly declared: Declared[] = [];
  /** Whether the channel closed (by `close()` or by the broker). */
  closed = false;
  /** When set, ack, nack and publish throw it (a channel whose close has not been heard yet). */
  failing: Error | undefined;
  /** When set, `assertQueue` rejects with it. */
  refuseDeclare: Error | undefined;
  /** Runs on every ack and nack, for tests that check what came before. */
  onSettle: ((settlement: Settlement) => void) | undefined;
  #publishWaiters: ((published: Published) => void)[] = [];

  /** This fake typed as amqplib's confirm channel (it has what tareas calls of one). */
  get asConfirmChannel(): ConfirmChannel {
    return this as unknown as ConfirmChannel;
  }

  /** This fake typed as amqplib's channel. */
  get asChannel(): Channel {
    return this as unknown as Channel;
  }

  /** The publishes not settled yet, oldest first. */
  get pending(): Published[] {
    return this.published.filter((published) => published.state === "pending");
  }

  /** Records an ack. */
  ack(message: unknown, allUpTo = false): void {
    this.#usable();
    this.#settle({ op: "ack", message, allUpTo });
  }

  /** Records a nack. */
  nack(message: unknown, allUpTo = false, requeue = true): void {
    this.#usable();
    this.#settle({ op: "nack", message, allUpTo, requeue });
  }

  /** Records a publish; the test settles it later. */
  publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: Options.Publish = {},
    callback?: (error: unknown) => void,
  ): boolean {
    this.#usable();
    const published: Published = {
      exchange,
      routingKey,
      content,
      options,
      state: "pending",
      callback,
    };
    this.published.push(published);
    for (const resolve of this.#publishWaiters.splice(0)) resolve(published);
    return true;
  }

  /** Publishes to `queue` through the default exchange. */
  sendToQueue(
    queue: string,
    content: Buffer,
    options?: Options.Publish,
    callback?: (error: unknown) => void,
  ): boolean {
    return this.publish("", queue, content, options, callback);
  }

  /** Records a queue declaration; rejects with {@linkcode FakeChannel.refuseDeclare} if set. */
  assertQueue(
    queue: string,
    options?: Options.AssertQueue,
  ): Promise<{ queue: string; messageCount: number; consumerCount: number }> {
    this.#usable();
    this.declared.push({ queue, options });
    if (this.refuseDeclare !== undefined) return Promise.reject(this.refuseDeclare);
    return Promise.resolve({ queue, messageCount: 0, consumerCount: 0 });
  }

  /** Every exchange declaration and binding, in order, as `exchange NAME TYPE` or `bind …`. */
  readonly topology: string[] = [];

  /** Records an exchange declaration. */
  assertExchange(exchange: string, type: string): Promise<{ exchange: string }> {
    this.#usable();
    this.topology.push(`exchange ${exchange} ${type}`);
    return Promise.resolve({ exchange });
  }

  /** Records a queue's binding. */
  bindQueue(queue: string, source: string, pattern: string): Promise<Record<never, never>> {
    this.#usable();
    this.topology.push(`bind queue ${queue} to ${source} by ${pattern}`);
    return Promise.resolve({});
  }

  /** Records an exchange's binding. */
  bindExchange(
    destination: string,
    source: string,
    pattern: string,
  ): Promise<Record<never, never>> {
    this.#usable();
    this.topology.push(`bind exchange ${destination} to ${source} by ${pattern}`);
    return Promise.resolve({});
  }

  /** Closes the channel, as the client does; rejects when it is closed already. */
  close(): Promise<void> {
    if (this.closed) return Promise.reject(new Error("Channel closed"));
    this.#close();
    return Promise.resolve();
  }

  /** The broker confirms `published` (the oldest pending publish by default). */
  confirm(published: Published | undefined = this.pending[0]): void {
    this.#resolve(published, "confirmed", null);
  }

  /** The broker refuses `published` (basic.nack). */
  refuse(published: Published | undefined = this.pending[0]): void {
    this.#resolve(published, "nacked", new Error("message nacked"));
  }

  /** The broker returns `published` as unroutable (basic.return), then confirms it. */
  bounce(published: Published | undefined = this.pending[0]): void {
    if (published === undefined) throw new Error("Nothing to return: no pending publish");
    this.emit("return", {
      fields: { replyCode: 312, replyText: "NO_ROUTE", exchange: published.exchange },
      properties: published.options,
      content: published.content,
    });
    this.confirm(published);
  }

  /** The broker closes the channel, after an error event when `error` is given. */
  closeByBroker(error?: Error): void {
    if (error !== undefined) this.emit("error", error);
    this.#close();
  }

  /** Resolves with the next publish, or rejects after `timeoutMs`. */
  nextPublish(timeoutMs = 2_000): Promise<Published> {
    return withTimeout(
      new Promise((resolve) => this.#publishWaiters.push(resolve)),
      timeoutMs,
      "a publish",
    );
  }

  #usable(): void {
    if (this.failing !== undefined) throw this.failing;
    if (this.closed) throw new Error("Channel closed");
  }

  #settle(settlement: Settlement): void {
    this.settlements.push(settlement);
    this.onSettle?.(settlement);
  }

  #resolve(
    published: Published | undefined,
    state: Published["state"],
    error: Error | null,
  ): void {
    if (published === undefined) throw new Error("Nothing to settle: no pending publish");
    if (published.state !== "pending") {
      throw new Error(`Cannot settle a publish twice: it is ${published.state}`);
    }
    published.state = state;
    published.callback?.(error);
  }

  #close(): void {
    if (this.closed) return;
    this.closed = true;
    // amqplib fails every unconfirmed publish with "channel closed", then emits close.
    for (const published of this.pending) {
      this.#resolve(published, "lost", new Error("channel closed"));
    }
    this.emit("close");
  }
}

/** A connection without a broker: it makes {@linkcode FakeChannel}s and records its close. */
export class FakeChannelModel extends EventEmitter {
  /** Every channel made, in order. */
  readonly channels: FakeChannel[] = [];
  /** Whether `close()` was called. */
  closed = false;
  #channelWaiters: ((channel: FakeChannel) => void)[] = [];

  /** This fake typed as amqplib's connection (it has what tareas calls of one). */
  get asChannelModel(): ChannelModel {
    return this as unknown as ChannelModel;
  }

  /** The last channel made. */
  get channel(): FakeChannel {
    const channel = this.channels.at(-1);
    if (channel === undefined) throw new Error("No channel was made on this connection");
    return channel;
  }

  /** Makes a channel (a confirm channel: the fake is both). */
  createConfirmChannel(): Promise<FakeChannel> {
    return Promise.resolve(this.#make());
  }

  /** Makes a channel. */
  createChannel(): Promise<FakeChannel> {
    return Promise.resolve(this.#make());
  }

  /** Records the close. */
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  /** Resolves with the next channel made, or rejects after `timeoutMs`. */
  nextChannel(timeoutMs = 2_000): Promise<FakeChannel> {
    return withTimeout(
      new Promise((resolve) => this.#channelWaiters.push(resolve)),
      timeoutMs,
      "a new channel",
    );
  }

  #make(): FakeChannel {
    if (this.closed) throw new Error("Connection closed");
    const channel = new FakeChannel();
    this.channels.push(channel);
    for (const resolve of this.#channelWaiters.splice(0)) resolve(channel);
    return channel;
  }
}

/** Options of {@linkcode consumeMessage}. */
export interface ConsumeMessageOptions {
  /** The body: bytes, or a value encoded as JSON. @default {a valid task} */
  body?: unknown;
  /** The headers table. */
  headers?: Record<string, unknown>;
  /** The message id. */
  messageId?: unknown;
  /** Whether the broker flags it as redelivered. @default {false} */
  redelivered?: boolean;
  /** The delivery tag. @default {1} */
  deliveryTag?: number;
}

/**
 * A delivered message as amqplib hands it to a consumer.
 *
 * @example
 * ```ts
 * const message = consumeMessage({ body: { id: "t1", createdAt: "2026-01-01T00:00:00.000Z" } });
 * ```
 */
export function consumeMessage(options: ConsumeMessageOptions = {}): ConsumeMessage {
  const body = "body" in options
    ? options.body
    : { id: "t1", seq: 1, createdAt: "2026-01-01T00:00:00.000Z" };
  const content = body instanceof Uint8Array
    ? Buffer.from(body)
    : Buffer.from(JSON.stringify(body));
  return {
    content,
    fields: {
      deliveryTag: options.deliveryTag ?? 1,
      redelivered: options.redelivered ?? false,
      exchange: "",
      routingKey: "q",
      consumerTag: "ctag",
    },
    properties: {
      contentType: "application/json",
      contentEncoding: undefined,
      headers: options.headers,
      deliveryMode: 2,
      priority: undefined,
      correlationId: undefined,
      replyTo: undefined,
      expiration: undefined,
      messageId: options.messageId,
      timestamp: undefined,
      type: undefined,
      userId: undefined,
      appId: undefined,
      clusterId: undefined,
    },
  };
}

/**
 * Resolves once the microtasks queued so far, and those they queue, have run: what a chain of
 * settled promises does in one turn is done by then (setImmediate runs after the microtask
 * queue has drained). Not a delay: nothing waits on a clock.
 */
export function microtasksDone(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** `promise`, or a rejection naming `what` after `ms`. */
async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
