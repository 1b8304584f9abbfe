/**
 * The worker as a library: consumes the work queue, runs a handler per task, and acks a task only
 * once its handler has finished, on the channel that delivered it. A failing attempt waits in a
 * delay queue and comes back; a task that keeps failing, or that is not a task, is dead-lettered
 * with its reason. Whatever happens, every delivery ends acked, retried or dead-lettered.
 *
 * The worker composes its parts: a session per connection (`session.ts`) whose acks are batched
 * (`acks.ts`), slots and deadlines for the running handlers (`runner.ts`), the outcome of a
 * failed or malformed delivery (`outcome.ts`), the completion rate it reports (`status.ts`), and
 * the events it publishes (`../event_publisher.ts`) and dispatches to local listeners
 * (`listeners.ts`). This file is the path of one delivery through them and the worker's life.
 *
 * @example
 * ```ts
 * import { createWorker } from "./mod.ts";
 *
 * await using worker = await createWorker<{ image: string }>({
 *   queue: "images",
 *   concurrency: 4,
 *   handler: async (task, { signal }) => {
 *     await resize(task.payload.image, { signal });
 *   },
 * });
 * worker.addEventListener("task.completed", (e) => console.log(e.detail.taskId));
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import type { ChannelModel } from "../../deps/amqplib.ts";
import type { Logger } from "../../deps/logtape.ts";
import { isoTime } from "../clock.ts";
import { type Connection, openConnection } from "../connection.ts";
import { DELAY_UNIT_MS } from "../delays.ts";
import {
  ConnectionLostError,
  errorMessage,
  PermanentError,
  TaskTimeoutError,
  UsageError,
} from "../errors.ts";
import { EventPublisher } from "../event_publisher.ts";
import { STATUS_INTERVAL_MS, type TareasEvent, type TaskEvent, workerEvent } from "../events.ts";
import type { TaskHandler } from "../handler.ts";
import { log } from "../log.ts";
import { checkNumber, checkPrefetch, checkQueue, checkWorkerName } from "../options.ts";
import {
  encodeResult,
  isReplyQueueOf,
  PROGRESS_TYPE,
  publishReply,
  RESULT_TYPE,
} from "../results.ts";
import { type Attempt, deliveriesUsedUp } from "../rules.ts";
import { DEFAULT_NAME, MAX_ID_LENGTH, type Task } from "../task.ts";
import { printable } from "../text.ts";
import { withProcessSpan } from "../trace.ts";
import { DEFAULT_URL, parseBrokerUrls } from "../url.ts";
import { type Delivery, type DeliveryFields, readDelivery } from "./delivery.ts";
import { ListenedEventTarget } from "./listeners.ts";
import { ProgressReports, type ProgressValue } from "./progress.ts";
import { ack, Outcomes } from "./outcome.ts";
import { Deadlines, runHandler, Slots } from "./runner.ts";
import { openSession, type Session } from "./session.ts";
import { CompletionRate } from "./status.ts";
import {
  BROKER_CONSUMER_TIMEOUT_MS,
  type Worker,
  WorkerLifecycleEvent,
  type WorkerObserver,
  type WorkerOptions,
} from "./types.ts";

export * from "./types.ts";

/**
 * Starts a worker and resolves once it is consuming.
 *
 * @throws {UsageError} when an option is out of range, or there is no handler.
 * @throws {ConfigError} when the broker refuses the credentials or the queue's arguments.
 * @throws {BrokerUnreachableError} when the broker cannot be reached after a few retries.
 * @example
 * ```ts
 * const worker = await createWorker({ handler: (task) => console.log(task.payload) });
 * await worker.close();
 * ```
 */
export async function createWorker<P = unknown>(options: WorkerOptions<P>): Promise<Worker> {
  const worker = new TareasWorker<P>(options);
  await worker.start();
  return worker;
}

class TareasWorker<P> extends ListenedEventTarget implements Worker {
  readonly name: string;
  readonly queue: string;
  readonly closed: Promise<void>;
  #url: string;
  #heartbeat: number;
  /** Handlers by task name. */
  #handlers: Map<string, TaskHandler<never>>;
  #prefetch: number;
  #concurrency: number;
  #taskTimeoutMs: number;
  #maxBody: number;
  #timeScale: number;
  #signal: AbortSignal | undefined;
  #logger: Logger = log("worker");
  #handlerLogger: Logger = log("handler");
  #events: EventPublisher;
  #slots: Slots<Delivery>;
  #deadlines: Deadlines;
  #outcomes: Outcomes;
  #rate = new CompletionRate();
  #progress = new ProgressReports<Delivery>((delivery, value) =>
    this.#sendProgress(delivery, value)
  );
  #connection: Connection | undefined;
  #session: Session | undefined;
  #stopping = false;
  #closing: Promise<void> | undefined;
  /** Checked once: a line per task costs even when its level is off. */
  #infoEnabled = false;
  #completed = 0;
  #failed = 0;
  #statusTimer: ReturnType<typeof setInterval> | undefined;
  /** The broker node (`host:port`) of the current connection. */
  #node = "";
  #settleClosed!: { resolve: () => void; reject: (error: unknown) => void };
  /** Sessions set up so far: the first, then one per reconnect. */
  #sessions = 0;
  #metrics: WorkerObserver | undefined;
  #detachMetrics: (() => void) | undefined;

  constructor(options: WorkerOptions<P>) {
    super();
    this.#handlers = handlersOf(options);
    this.#url = options.url ?? DEFAULT_URL;
    parseBrokerUrls(this.#url);
    this.queue = checkQueue(options.queue);
    this.name = checkWorkerName(options.name ?? defaultName());
    this.#heartbeat = checkNumber("heartbeat", options.heartbeat);
    this.#concurrency = checkNumber("concurrency", options.concurrency);
    this.#prefetch = checkNumber("prefetch", options.prefetch ?? this.#concurrency);
    checkPrefetch(this.#prefetch, this.#concurrency);
    this.#taskTimeoutMs = checkNumber("taskTimeout", options.taskTimeout);
    this.#maxBody = checkNumber("maxBody", options.maxBody);
    this.#timeScale = checkNumber("timeScale", options.timeScale);
    this.#signal = options.signal;
    this.#metrics = options.metrics;
    this.#events = new EventPublisher(this.queue);
    this.#slots = new Slots({
      concurrency: this.#concurrency,
      handle: (delivery) => this.#handle(delivery),
      onError: (error) => this.#logger.error("Task handling failed: {error}", { error }),
    });
    const timeoutMs = this.#taskTimeoutMs;
    this.#deadlines = new Deadlines(timeoutMs, () => new TaskTimeoutError(timeoutMs));
    this.#outcomes = new Outcomes({
      queue: this.queue,
      worker: this.name,
      maxAttempts: checkNumber("maxAttempts", options.maxAttempts),
      retryDelayMs: checkNumber("retryDelay", options.retryDelay),
      emit: (event) => this.#emit(event),
      logger: this.#logger,
    });
    this.closed = new Promise((resolve, reject) => this.#settleClosed = { resolve, reject });
    this.closed.catch(() => {});
  }

  get inHand(): number {
    return this.#slots.inHand;
  }

  get prefetch(): number {
    return this.#prefetch;
  }

  get concurrency(): number {
    return this.#concurrency;
  }

  get ready(): boolean {
    return this.#session?.consumerTag !== undefined && !this.#session.closed && !this.#stopping;
  }

  get reconnects(): number {
    return Math.max(0, this.#sessions - 1);
  }

  async start(): Promise<void> {
    this.#infoEnabled = this.#logger.isEnabledFor("info");
    if (this.#taskTimeoutMs === 0 || this.#taskTimeoutMs >= BROKER_CONSUMER_TIMEOUT_MS) {
      this.#logger.warn(
        "Task timeout {timeout} is not below the broker's 30-minute consumer timeout: a task " +
          "running that long has its channel closed and is redelivered",
        { timeout: this.#taskTimeoutMs === 0 ? "none" : `${this.#taskTimeoutMs / 1000} s` },
      );
    }
    this.#connection = await openConnection({
      url: this.#url,
      heartbeat: this.#heartbeat,
      name: `tareas worker ${this.name}`,
      setup: (model, node) => this.#setup(model, node),
    });
    this.#connection.failed.catch((error) => {
      this.#settleClosed.reject(error);
      this.close();
    });
    this.#statusTimer = setInterval(() => this.#publishStatus(), STATUS_INTERVAL_MS);
    this.#deadlines.start();
    this.#detachMetrics = this.#metrics?.attach(this);
    if (this.#signal?.aborted) this.close();
    this.#signal?.addEventListener("abort", () => this.close(), { once: true });
  }

  close(): Promise<void> {
    return this.#closing ??= this.#close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#statusTimer);
    this.#logger.info("Stopping: finishing {count} task(s) in hand", {
      count: this.#slots.active,
    });
    this.#slots.dropWaiting(); // Never started: the connection's close returns them to the queue.
    const session = this.#session;
    if (session?.consumerTag) {
      await session.consume.cancel(session.consumerTag).catch(() => {});
    }
    await this.#slots.idle();
    this.#deadlines.stop();
    this.#progress.stop();
    this.#session?.acks.flush();
    this.#emit(workerEvent("worker.offline", this.name));
    await this.#events.flush();
    this.#events.stop();
    await this.#events.attach(undefined);
    await this.#connection?.close();
    this.#logger.info("Worker {name} stopped", { name: this.name });
    this.#detachMetrics?.();
    this.#settleClosed.resolve();
  }

  #emit(event: TareasEvent): void {
    this.#events.publish(event);
    if (this.listens(event.type)) this.dispatchEvent(new WorkerLifecycleEvent(event));
  }

  #publishStatus(): void {
    this.#emit(workerEvent("worker.status", this.name, {
      inHand: this.inHand,
      completed: this.#completed,
      failed: this.#failed,
      lastMinute: this.#rate.lastMinute(Date.now()),
      ...(this.#node === "" ? {} : { node: this.#node }),
    }));
  }

  async #setup(model: ChannelModel, node: string): Promise<void> {
    const session = await openSession(model, {
      queue: this.queue,
      prefetch: this.#prefetch,
      // Every ack goes out after the events before it that someone listens to (all of them
      // before the ack of a task someone waits for).
      beforeAcks: (awaited) => awaited ? this.#events.sendNow() : this.#events.sendListened(),
      lost: () => new ConnectionLostError(),
      onClose: (closed, what) => {
        if (this.#session !== closed) return;
        this.#session = undefined;
        this.#events.attach(undefined);
        this.#slots.dropWaiting(); // Their channel is gone: the broker requeues them.
        if (this.#stopping) return;
        // A channel closed under a live connection (an error, a consumer timeout): start over.
        this.#logger.warn("The {what} channel closed; reconnecting", { what });
        model.close().catch(() => {});
      },
      logger: this.#logger,
    });
    this.#session = session;
    await this.#events.attach(model);
    if (this.#stopping) return;
    const { consumerTag } = await session.consume.consume(this.queue, (message) => {
      if (message) {
        session.acks.received(message);
        return this.#slots.receive({ session, message, fields: undefined, progress: undefined });
      }
      // The broker cancelled the consumer (queue deleted, consumer timeout on 4.3+).
      if (this.#session === session && !this.#stopping) {
        this.#logger.warn("The broker cancelled the consumer; reconnecting");
        model.close().catch(() => {});
      }
    });
    session.consumerTag = consumerTag;
    this.#sessions++;
    this.#node = node;
    this.#emit(workerEvent("worker.online", this.name, { node }));
    this.#logger.info(
      "Worker {name} consuming {queue} (prefetch {prefetch}, concurrency {concurrency})",
      {
        name: this.name,
        queue: this.queue,
        prefetch: this.#prefetch,
        concurrency: this.#concurrency,
      },
    );
  }

  /** Handles one delivery; returns a promise only when that takes more than this turn. */
  #handle(delivery: Delivery): Promise<void> | undefined {
    const read = readDelivery<P>(delivery.message, this.#maxBody);
    const { attempt, fields } = read;
    if (read.malformed !== undefined) {
      this.#logger.error("Malformed message {taskId} dead-lettered: {reason}", {
        ...fields,
        reason: read.malformed,
      });
      return this.#outcomes.deadLetter(delivery, fields, read.malformed);
    }
    const { task } = read;
    delivery.fields = fields;
    if (deliveriesUsedUp(attempt)) {
      // Should this delivery end without an ack too, the broker would drop the task with no
      // event, and whoever waits for it would never hear: dead-letter it here, visibly.
      const reason = `Delivered ${attempt.returns + 1} times without an ack: each run crashed ` +
        "its worker or lost its connection";
      this.#logger.error("Task #{seq} {taskId} dead-lettered: {reason}", { ...fields, reason });
      return this.#outcomes.deadLetter(delivery, fields, reason);
    }
    // Published for later by someone who set its time in a header: back to the ladder.
    if (read.waitMs > DELAY_UNIT_MS) return this.#outcomes.postpone(delivery, fields, read.waitMs);
    const handler = this.#handlers.get(task.name);
    if (handler === undefined) {
      const reason = `no handler for task "${task.name}"`;
      this.#logger.error("Task #{seq} {taskId} dead-lettered: {reason}", { ...fields, reason });
      return this.#outcomes.deadLetter(delivery, fields, reason);
    }
    const startedAt = Date.now();
    const emitStarted = (): TaskEvent => {
      const event: TaskEvent = {
        type: "task.started",
        worker: this.name,
        at: isoTime(startedAt),
        ...fields,
      };
      this.#emit(event);
      return event;
    };
    // Remote listeners would not see the event of a task that ends in this turn: it is withdrawn
    // for its task.completed. So it is made only for a local listener, or once the handler is
    // found to go on after this turn.
    let started = this.listens("task.started") ? emitStarted() : undefined;
    if (this.#infoEnabled) {
      this.#logger.info(
        "Started task #{seq} {taskId} (complexity {complexity}, attempt {attempt}{again})",
        {
          ...fields,
          complexity: task.complexity,
          again: fields.redelivered ? ", redelivered" : "",
        },
      );
    }
    const since = performance.now();
    let running: unknown;
    try {
      running = withProcessSpan(
        this.queue,
        task,
        delivery.message.properties.headers?.traceparent,
        () =>
          runHandler(
            (signal) =>
              handler(task as Task<never>, {
                signal,
                attempt: attempt.attempt,
                redelivered: fields.redelivered,
                logger: this.#handlerLogger,
                timeScale: this.#timeScale,
                progress: (value) => this.#progress.report(delivery, value),
              }),
            since,
            this.#deadlines,
            delivery.session.runs,
          ),
      );
    } catch (error) {
      return this.#afterFailure(delivery, fields, attempt, since, started, error);
    }
    if (!(running instanceof Promise)) {
      return this.#afterSuccess(delivery, fields, attempt, since, started, running);
    }
    started ??= emitStarted();
    return running.then(
      (result) => this.#afterSuccess(delivery, fields, attempt, since, started, result),
      (error) => this.#afterFailure(delivery, fields, attempt, since, started, error),
    );
  }

  #afterSuccess(
    delivery: Delivery,
    fields: DeliveryFields,
    attempt: Attempt,
    since: number,
    started: TaskEvent | undefined,
    result: unknown,
  ): Promise<void> | undefined {
    this.#progress.end(delivery);
    const replyTo = delivery.message.properties.replyTo;
    if (replyTo !== undefined && isReplyQueueOf(this.queue, replyTo)) {
      return this.#reply(delivery, fields, attempt, since, started, replyTo, result);
    }
    this.#complete(delivery, fields, since, started);
  }

  /**
   * Sends a task's result to the producer waiting for it, confirmed, before its completion and
   * ack: a result that cannot be sent fails the attempt, one that is not JSON fails it for good.
   */
  async #reply(
    delivery: Delivery,
    fields: DeliveryFields,
    attempt: Attempt,
    since: number,
    started: TaskEvent | undefined,
    replyTo: string,
    result: unknown,
  ): Promise<void> {
    let body: Buffer;
    try {
      body = encodeResult(result);
    } catch (error) {
      const reason = errorMessage(error);
      return this.#afterFailure(
        delivery,
        fields,
        attempt,
        since,
        started,
        new PermanentError(reason),
      );
    }
    try {
      await publishReply(delivery.session.publish, replyTo, fields.taskId, RESULT_TYPE, body);
    } catch (error) {
      return this.#afterFailure(delivery, fields, attempt, since, started, error);
    }
    this.#complete(delivery, fields, since, started);
  }

  /** Sends the latest progress of a running task: an event, and to its caller if it has one. */
  #sendProgress(delivery: Delivery, value: ProgressValue): void {
    const fields = delivery.fields;
    if (fields === undefined || delivery.session.closed) return;
    this.#emit({
      type: "task.progress",
      worker: this.name,
      at: isoTime(),
      ...fields,
      progress: value,
    });
    const replyTo = delivery.message.properties.replyTo;
    if (isReplyQueueOf(this.queue, replyTo)) {
      const body = Buffer.from(JSON.stringify({ progress: value }));
      publishReply(delivery.session.publish, replyTo, fields.taskId, PROGRESS_TYPE, body)
        .catch(() => {}); // Progress is best effort: the result is what counts.
    }
  }

  /** A task completed: its event, its count, its ack. */
  #complete(
    delivery: Delivery,
    fields: DeliveryFields,
    since: number,
    started: TaskEvent | undefined,
  ): void {
    const durationMs = Math.round(performance.now() - since);
    // Ended within the events window: its completion says it all, in one message.
    if (started !== undefined) this.#events.withdraw(started);
    const now = Date.now();
    // Spelled out rather than spread: a literal of one shape is cheaper to build and to encode.
    this.#emit({
      type: "task.completed",
      worker: this.name,
      at: isoTime(now),
      taskId: fields.taskId,
      name: fields.name ?? DEFAULT_NAME,
      seq: fields.seq,
      attempt: fields.attempt,
      redelivered: fields.redelivered,
      durationMs,
    });
    this.#completed++;
    this.#rate.count(now);
    if (this.#infoEnabled) {
      this.#logger.info("Completed task #{seq} {taskId} in {durationMs} ms", {
        ...fields,
        durationMs,
      });
    }
    ack(delivery);
  }

  #afterFailure(
    delivery: Delivery,
    fields: DeliveryFields,
    attempt: Attempt,
    since: number,
    started: TaskEvent | undefined,
    error: unknown,
  ): Promise<void> | undefined {
    this.#progress.end(delivery);
    if (started !== undefined) this.#events.withdraw(started);
    if (error instanceof ConnectionLostError || delivery.session.closed) {
      // The broker has already requeued it: neither a failure nor a retry of ours.
      this.#logger.warn("Abandoned task #{seq} {taskId}: {reason}", {
        ...fields,
        reason: errorMessage(error),
      });
      return;
    }
    this.#failed++;
    const durationMs = Math.round(performance.now() - since);
    return this.#outcomes.failed(delivery, fields, attempt, durationMs, error);
  }
}

/**
 * `<hostname>-<pid>`, or `worker-<pid>` when the program may not read the host name: asking for
 * it would stop a program at a terminal at a permission prompt.
 */
function defaultName(): string {
  const { state } = Deno.permissions.querySync({ name: "sys", kind: "hostname" });
  return state === "granted" ? `${Deno.hostname()}-${Deno.pid}` : `worker-${Deno.pid}`;
}

/** The handlers of `options` by task name; `handler` is the default name's. */
function handlersOf<P>(options: WorkerOptions<P>): Map<string, TaskHandler<never>> {
  const handlers = new Map(Object.entries(options.handlers ?? {}));
  if (options.handler !== undefined) {
    if (handlers.has(DEFAULT_NAME)) {
      throw new UsageError(`Invalid handlers: give handler or handlers.${DEFAULT_NAME}, not both`);
    }
    handlers.set(DEFAULT_NAME, options.handler as TaskHandler<never>);
  }
  if (handlers.size === 0) {
    throw new UsageError(
      "Invalid handler: createWorker needs the function that runs each task (its handler " +
        "option, or handlers by task name; sleepHandler is the demo's simulated work)",
    );
  }
  for (const [name, handler] of handlers) {
    if (typeof handler !== "function" || name === "" || name.length > MAX_ID_LENGTH) {
      throw new UsageError(
        `Invalid handlers: "${
          printable(name.slice(0, MAX_ID_LENGTH))
        }" must be a function, named ` +
          `by 1 to ${MAX_ID_LENGTH} characters`,
      );
    }
  }
  return handlers;
}
