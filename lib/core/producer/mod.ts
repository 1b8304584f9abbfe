/**
 * The producer as a library: enqueues tasks as persistent messages through a confirm channel and
 * resolves each only once the broker has confirmed it. If the connection drops, whatever was not
 * yet confirmed is published again, with the same id, as soon as it is back.
 *
 * @example
 * ```ts
 * import { createProducer } from "./mod.ts";
 *
 * await using producer = await createProducer({ queue: "images" });
 * const task = await producer.enqueue({ image: "cat.png" }, { id: "resize-cat.png" });
 * const more = await producer.enqueueMany([{ image: "a.png" }, { image: "b.png" }]);
 * ```
 * @module
 */
import type { ChannelModel, ConfirmChannel } from "../../deps/amqplib.ts";
import type { Span } from "../../deps/opentelemetry.ts";
import type { Buffer } from "node:buffer";
import { isNacked, maxMessageSize } from "../broker_errors.ts";
import { type Connection, openConnection } from "../connection.ts";
import { errorMessage, TareasError } from "../errors.ts";
import { log } from "../log.ts";
import { createTask, encodeTask, type Task, type TaskProperties, taskProperties } from "../task.ts";
import { checkNumber, checkQueue } from "../options.ts";
import { declareTopology } from "../topology.ts";
import { startPublishSpan } from "../trace.ts";
import { DEFAULT_URL, parseBrokerUrls } from "../url.ts";

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
   * Closes the connection. Tasks enqueued and not yet confirmed are rejected (await `enqueue`
   * first). Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Connects a producer and resolves once it can publish (the queue is declared).
 *
 * @throws {ConfigError} when the broker refuses the credentials or the queue's arguments.
 * @throws {BrokerUnreachableError} when the broker cannot be reached after a few retries.
 * @example
 * ```ts
 * const producer = await createProducer({ url: "amqp://guest:guest@127.0.0.1:5672" });
 * await producer.enqueue("hello");
 * await producer.close();
 * ```
 */
export async function createProducer(options: ProducerOptions = {}): Promise<Producer> {
  const producer = new TareasProducer(options);
  await producer.connect();
  return producer;
}

/** A task on its way: published (perhaps again) until the broker confirms it. */
interface Pending {
  task: Task;
  content: Buffer;
  properties: TaskProperties;
  span: Pick<Span, "end">;
  confirmed: (task: Task) => void;
  refused: (error: Error) => void;
  /** Times the broker refused it (basic.nack), and when it did first. */
  nacks: number;
  firstNack?: number;
}

/** How long a task the broker keeps refusing (basic.nack) is published again before it is reported. */
const NACK_PATIENCE_MS = 60_000;

/** Unconfirmed tasks beyond which {@linkcode Producer.enqueueMany} waits before taking more. */
const MAX_IN_FLIGHT = 10_000;

class TareasProducer implements Producer {
  readonly queue: string;
  #options: ProducerOptions;
  #connection: Connection | undefined;
  #channel: ConfirmChannel | undefined;
  /** The connection's current channel model (a new one after each reconnect). */
  #model: ChannelModel | undefined;
  /** Not yet confirmed, in publish order; keyed by an internal number (ids may repeat). */
  #pending = new Map<number, Pending>();
  /** Not yet handed to the current channel, in order. */
  #outbox: number[] = [];
  #next = 0;
  #blocked = false;
  #room: (() => void)[] = [];
  #closing: Promise<void> | undefined;

  constructor(options: ProducerOptions) {
    this.queue = checkQueue(options.queue);
    parseBrokerUrls(options.url ?? DEFAULT_URL);
    checkNumber("heartbeat", options.heartbeat);
    this.#options = options;
  }

  async connect(): Promise<void> {
    this.#connection = await openConnection({
      url: this.#options.url ?? DEFAULT_URL,
      heartbeat: this.#options.heartbeat ?? 15,
      name: this.#options.name ?? "tareas producer",
      setup: (model) => this.#setup(model),
    });
    this.#connection.failed.catch((error) => this.#failAll(error));
  }

  async #setup(model: ChannelModel): Promise<void> {
    this.#model = model;
    const channel = await model.createConfirmChannel();
    channel.on("error", (error: Error) => {
      log("producer").debug("Publish channel failed: {cause}", { cause: errorMessage(error) });
      this.#refuseOversized(error);
    });
    await declareTopology(channel, this.queue, model);
    channel.on("drain", () => {
      this.#blocked = false;
      this.#pump();
    });
    channel.on("close", () => {
      if (this.#channel !== channel) return;
      this.#channel = undefined;
      // The broker closed the channel under a live connection (a publish it refused):
      // reconnecting republishes, on a new channel, whatever is still unconfirmed.
      if (!this.#closing) model.close().catch(() => {});
    });
    if (this.#pending.size > 0) {
      log("producer").info("Publishing again the {count} unconfirmed task(s)", {
        count: this.#pending.size,
      });
    }
    // Everything unconfirmed goes out again on the new channel, in order, with the same ids.
    this.#outbox = [...this.#pending.keys()];
    this.#channel = channel;
    this.#blocked = false;
    this.#pump();
  }

  enqueue<P>(payload: P, options: EnqueueOptions = {}): Promise<Task<P>> {
    const { promise, resolve, reject } = Promise.withResolvers<Task<P>>();
    try {
      this.#add(payload, options, resolve as (task: Task) => void, reject);
    } catch (error) {
      reject(error);
    }
    return promise;
  }

  async enqueueMany<P>(
    payloads: Iterable<P> | AsyncIterable<P>,
    options: EnqueueManyOptions<P> = {},
  ): Promise<Task<P>[]> {
    // No promise per task: a count of the unconfirmed ones, and the first failure.
    const tasks: Task<P>[] = [];
    let unsettled = 1; // The reading of `payloads`, until it ends.
    let failure: unknown;
    const all = Promise.withResolvers<void>();
    const settled = () => --unsettled === 0 && all.resolve();
    let index = 0;
    /** Adds one task; returns whether to wait for room before the next. */
    const take = (payload: P): boolean => {
      const at = index++;
      unsettled++;
      try {
        this.#add(payload, options.options?.(payload, at) ?? {}, (task) => {
          tasks[at] = task as Task<P>;
          settled();
        }, (error) => {
          failure ??= error;
          settled();
        });
      } catch (error) {
        failure ??= error; // Reported below, once every task has settled.
        settled();
      }
      return this.#outbox.length > 0 || this.#pending.size >= MAX_IN_FLIGHT;
    };
    try {
      // A plain loop for an array: `for await` would wait a turn per payload.
      if (Symbol.asyncIterator in payloads) {
        for await (const payload of payloads) if (take(payload)) await this.#waitForRoom();
      } else {
        for (const payload of payloads) if (take(payload)) await this.#waitForRoom();
      }
    } catch (error) {
      // The payloads failed (a bad input line): what was published is confirmed first.
      settled();
      await all.promise;
      throw error;
    }
    settled();
    await all.promise;
    if (failure !== undefined) throw failure;
    return tasks;
  }

  /**
   * Queues a task for publishing; `confirmed` or `refused` is called once the broker answers.
   * @throws {TareasError} when the producer is closed, {TaskFormatError} for a bad payload.
   */
  #add(
    payload: unknown,
    options: EnqueueOptions,
    confirmed: (task: Task) => void,
    refused: (error: Error) => void,
  ): void {
    if (this.#closing) throw new TareasError("Cannot enqueue: the producer is closed");
    const task = createTask(payload, options);
    const content = encodeTask(task);
    const { span, traceparent } = startPublishSpan(this.queue, task);
    const key = this.#next++;
    this.#pending.set(key, {
      task,
      content,
      properties: taskProperties(task, { traceparent, awaited: this.#options.awaited }),
      span,
      confirmed,
      refused,
      nacks: 0,
    });
    this.#outbox.push(key);
    this.#pump();
  }

  /** Resolves once the channel takes more and fewer than the in-flight limit are unconfirmed. */
  #waitForRoom(): Promise<void> {
    return new Promise((resolve) => this.#room.push(resolve));
  }

  /** Hands the outbox to the channel until it asks to wait for `drain`. */
  #pump(): void {
    const channel = this.#channel;
    while (channel !== undefined && !this.#blocked && this.#outbox.length > 0) {
      const key = this.#outbox.shift()!;
      const pending = this.#pending.get(key);
      if (pending === undefined) continue;
      try {
        this.#blocked = !channel.sendToQueue(
          this.queue,
          pending.content,
          pending.properties,
          (error) => this.#confirm(channel, key, error),
        );
      } catch {
        // The channel is closing: the next setup publishes what is still unconfirmed.
        return;
      }
    }
    if (this.#outbox.length === 0 && !this.#blocked && this.#pending.size < MAX_IN_FLIGHT) {
      for (const resolve of this.#room.splice(0)) resolve();
    }
  }

  #confirm(channel: ConfirmChannel, key: number, error: unknown): void {
    const pending = this.#pending.get(key);
    if (pending === undefined) return;
    if (!error) {
      this.#pending.delete(key);
      pending.span.end();
      pending.confirmed(pending.task);
    } else if (this.#channel === channel && isNacked(error)) {
      // A live broker could not take the task (a cluster electing a new queue leader, say):
      // publish it again a little later, for a while, then report it rather than loop.
      pending.firstNack ??= Date.now();
      if (Date.now() - pending.firstNack > NACK_PATIENCE_MS) {
        this.#pending.delete(key);
        pending.span.end();
        pending.refused(
          new TareasError(
            `The broker refused task #${pending.task.seq} ${pending.task.id} (basic.nack) for ` +
              `${NACK_PATIENCE_MS / 1000} s`,
          ),
        );
      } else {
        setTimeout(() => {
          if (this.#channel === channel && this.#pending.has(key)) this.#renew(channel);
        }, Math.min(1_000, 100 * 2 ** pending.nacks++));
      }
    }
    // Otherwise the channel closed: the task stays pending and goes out again after reconnecting.
    if (this.#pending.size < MAX_IN_FLIGHT && this.#outbox.length === 0) this.#pump();
  }

  /**
   * Publishes what is unconfirmed again, on a new channel. Measured on 3.10: a channel opened
   * while a cluster elects a queue's new leader (0.1 s after the old leader's node died) refused
   * every publish for as long as it lived, while a channel opened later took them all.
   */
  #renew(channel: ConfirmChannel): void {
    const model = this.#model!;
    this.#channel = undefined;
    channel.close().catch(() => {});
    this.#setup(model).catch((error) => {
      log("producer").debug("No new channel: {cause}", { cause: errorMessage(error) });
      model.close().catch(() => {}); // Reconnecting sets up a channel.
    });
  }

  /**
   * A publish larger than the broker's `max_message_size` closes the channel: the tasks that
   * large are refused, for good, rather than published again forever.
   */
  #refuseOversized(error: Error): void {
    const max = maxMessageSize(error);
    if (max === undefined) return;
    for (const [key, pending] of this.#pending) {
      if (pending.content.byteLength <= max) continue;
      this.#pending.delete(key);
      pending.span.end();
      pending.refused(
        new TareasError(
          `The broker refused task #${pending.task.seq} ${pending.task.id}: its ` +
            `${pending.content.byteLength} bytes exceed the broker's max_message_size of ${max}`,
        ),
      );
    }
  }

  #failAll(error: unknown): void {
    for (const pending of this.#pending.values()) {
      pending.span.end();
      pending.refused(error instanceof Error ? error : new Error(String(error)));
    }
    this.#pending.clear();
    this.#outbox = [];
    for (const resolve of this.#room.splice(0)) resolve();
  }

  close(): Promise<void> {
    return this.#closing ??= (async () => {
      const unconfirmed = this.#pending.size;
      if (unconfirmed > 0) {
        this.#failAll(
          new TareasError(
            `The producer closed before the broker confirmed ${unconfirmed} task(s)`,
          ),
        );
      }
      await this.#connection?.close();
    })();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
