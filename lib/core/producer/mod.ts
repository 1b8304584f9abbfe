/**
 * The producer as a library: enqueues tasks as persistent messages through a confirm channel and
 * resolves each only once the broker has confirmed it (`outbox.ts`). If the connection drops,
 * whatever was not yet confirmed is published again, with the same id, as soon as it is back. A
 * task may be named (its handler), delayed (the delays' ladder), and its result waited for
 * (`call`, through the producer's reply queue, `../results.ts`).
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
import { type Connection, openConnection } from "../connection.ts";
import { MAX_DELAY_MS } from "../delays.ts";
import { errorMessage, TareasError, TaskDeadError, TaskFormatError } from "../errors.ts";
import { log } from "../log.ts";
import { checkNumber, checkQueue } from "../options.ts";
import { type Progress, type Reply, ReplyQueue, type TaskResult } from "../results.ts";
import { createTask, encodeTask, type Task, taskProperties } from "../task.ts";
import { declareTopology } from "../topology.ts";
import { startPublishSpan } from "../trace.ts";
import { DEFAULT_URL, parseBrokerUrls } from "../url.ts";
import { Outbox } from "./outbox.ts";
import type {
  CallOptions,
  EnqueueManyOptions,
  EnqueueOptions,
  Producer,
  ProducerOptions,
} from "./types.ts";

export type * from "./types.ts";

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

/** A caller waiting for its task's result. */
interface Call {
  resolve: (result: unknown) => void;
  reject: (error: unknown) => void;
  onProgress: ((progress: Progress) => void) | undefined;
}

class TareasProducer implements Producer {
  readonly queue: string;
  #options: ProducerOptions;
  #connection: Connection | undefined;
  #outbox: Outbox;
  #channel: ConfirmChannel | undefined;
  /** The connection's current channel model (a new one after each reconnect). */
  #model: ChannelModel | undefined;
  /** The reply queue, made at the first `call` (or at once with `onResult`). */
  #replies: ReplyQueue | undefined;
  /** Consuming the reply queue on the current connection. */
  #consuming: Promise<unknown> | undefined;
  /** Callers waiting for their result, by task id. */
  #calls = new Map<string, Call>();
  #closing: Promise<void> | undefined;

  constructor(options: ProducerOptions) {
    this.queue = checkQueue(options.queue);
    parseBrokerUrls(options.url ?? DEFAULT_URL);
    checkNumber("heartbeat", options.heartbeat);
    this.#options = options;
    this.#outbox = new Outbox({ queue: this.queue, renew: (model) => this.#renew(model) });
    if (options.onResult !== undefined) {
      this.#replies = new ReplyQueue(this.queue, (reply) => this.#reply(reply));
    }
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
    this.#consuming = undefined;
    const channel = await model.createConfirmChannel();
    channel.on("error", (error: Error) => {
      log("producer").debug("Publish channel failed: {cause}", { cause: errorMessage(error) });
    });
    await declareTopology(channel, this.queue, model);
    if (this.#replies !== undefined) await (this.#consuming = this.#replies.attach(model));
    channel.on("close", () => {
      if (!this.#outbox.detach(channel)) return;
      this.#channel = undefined;
      // The broker closed the channel under a live connection (a publish it refused):
      // reconnecting republishes, on a new channel, whatever is still unconfirmed.
      if (!this.#closing) model.close().catch(() => {});
    });
    this.#channel = channel;
    this.#outbox.attach(model, channel);
  }

  /** A new channel in place of one that refuses what it is given. */
  #renew(model: ChannelModel): void {
    this.#setup(model).catch((error) => {
      log("producer").debug("No new channel: {cause}", { cause: errorMessage(error) });
      model.close().catch(() => {}); // Reconnecting sets up a channel.
    });
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
      return this.#outbox.full;
    };
    try {
      // A plain loop for an array: `for await` would wait a turn per payload.
      if (Symbol.asyncIterator in payloads) {
        for await (const payload of payloads) if (take(payload)) await this.#outbox.waitForRoom();
      } else {
        for (const payload of payloads) if (take(payload)) await this.#outbox.waitForRoom();
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

  async call<R = unknown, P = unknown>(payload: P, options: CallOptions = {}): Promise<R> {
    if (this.#closing) throw new TareasError("Cannot call: the producer is closed");
    const replies = this.#replies ??= new ReplyQueue(this.queue, (reply) => this.#reply(reply));
    if (this.#model !== undefined) await (this.#consuming ??= replies.attach(this.#model));
    const id = options.id ?? crypto.randomUUID();
    if (this.#calls.has(id)) {
      throw new TareasError(`Cannot call: a call of task ${id} is already waiting for its result`);
    }
    const signals = [
      ...(options.signal ? [options.signal] : []),
      ...(options.timeout === undefined ? [] : [AbortSignal.timeout(options.timeout)]),
    ];
    const signal = signals.length === 0 ? undefined : AbortSignal.any(signals);
    signal?.throwIfAborted();
    const answer = Promise.withResolvers<unknown>();
    const call: Call = { ...answer, onProgress: options.onProgress };
    this.#calls.set(id, call); // Before the publish: the result may come back at once.
    const abort = () => answer.reject(signal?.reason);
    signal?.addEventListener("abort", abort, { once: true });
    try {
      await this.enqueue(payload, { ...options, id });
      return await answer.promise as R;
    } finally {
      signal?.removeEventListener("abort", abort);
      if (this.#calls.get(id) === call) this.#calls.delete(id);
    }
  }

  /** A reply from a worker: to its caller, and to `onResult`. */
  #reply(reply: Reply): void {
    const call = this.#calls.get(reply.taskId);
    if (reply.status === "progress") return call?.onProgress?.(reply.progress);
    this.#options.onResult?.(reply as TaskResult);
    if (call === undefined) return;
    if (reply.status === "completed") call.resolve(reply.result);
    else call.reject(new TaskDeadError(reply.taskId, reply.reason));
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
    const replyTo = this.#replies?.name;
    this.#outbox.add({
      task,
      content,
      properties: taskProperties(task, { traceparent, awaited: this.#options.awaited, replyTo }),
      span,
      runAt: runAtOf(options),
      confirmed,
      refused,
      nacks: 0,
    });
  }

  #failAll(error: unknown): void {
    this.#outbox.failAll(error);
    for (const call of this.#calls.values()) call.reject(error);
    this.#calls.clear();
  }

  close(): Promise<void> {
    return this.#closing ??= (async () => {
      const unconfirmed = this.#outbox.size;
      if (unconfirmed > 0) {
        this.#outbox.failAll(
          new TareasError(`The producer closed before the broker confirmed ${unconfirmed} task(s)`),
        );
      }
      for (const call of this.#calls.values()) {
        call.reject(new TareasError("The producer closed before the result came back"));
      }
      this.#calls.clear();
      await this.#connection?.close();
    })();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * When a task may run (epoch ms), from `delay` or `runAt`; undefined for at once.
 *
 * @throws {TaskFormatError} for a delay that is not a number of ms from 0 to 38 days, or both.
 */
function runAtOf(options: EnqueueOptions): number | undefined {
  const { delay, runAt } = options;
  if (delay === undefined && runAt === undefined) return undefined;
  if (delay !== undefined && runAt !== undefined) {
    throw new TaskFormatError("Invalid task: give delay or runAt, not both");
  }
  const ms = delay ?? runAt!.getTime() - Date.now();
  if (runAt !== undefined && !(runAt instanceof Date)) {
    throw new TaskFormatError("Invalid runAt: expected a Date");
  }
  if (!Number.isFinite(ms) || (delay !== undefined && delay < 0) || ms > MAX_DELAY_MS) {
    throw new TaskFormatError(
      `Invalid ${delay === undefined ? "runAt" : "delay"}: expected up to ${MAX_DELAY_MS} ms ` +
        "(about 38 days) from now",
    );
  }
  return ms > 0 ? Date.now() + ms : undefined;
}
