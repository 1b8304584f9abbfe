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
import type { ChannelModel, ConsumeMessage } from "../../deps/amqplib.ts";
import type { Logger } from "../../deps/logtape.ts";
import { isoTime } from "../clock.ts";
import { type Connection, openConnection } from "../connection.ts";
import { ConnectionLostError, errorMessage, TaskTimeoutError } from "../errors.ts";
import { EventPublisher } from "../event_publisher.ts";
import { STATUS_INTERVAL_MS, type TareasEvent, type TaskEvent, workerEvent } from "../events.ts";
import { log } from "../log.ts";

import type { Attempt } from "../rules.ts";
import { DEFAULT_NAME, type Task } from "../task.ts";
import { withProcessSpan } from "../trace.ts";
import { admit, type Delivery, type DeliveryFields, readDelivery } from "./delivery.ts";
import { ListenedEventTarget } from "./listeners.ts";
import { ProgressReports, type ProgressValue } from "./progress.ts";
import { ack, Outcomes } from "./outcome.ts";
import { replyQueueOf, sendProgress, sendResult } from "./replies.ts";
import { Deadlines, runHandler, Slots } from "./runner.ts";
import { openSession, type Session, startConsuming } from "./session.ts";
import { type WorkerSettings, workerSettings } from "./settings.ts";
import { CompletionRate } from "./status.ts";
import {
  BROKER_CONSUMER_TIMEOUT_MS,
  type Worker,
  WorkerLifecycleEvent,
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
  #settings: WorkerSettings;
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
  #detachMetrics: (() => void) | undefined;

  constructor(options: WorkerOptions<P>) {
    super();
    const settings = this.#settings = workerSettings(options);
    this.queue = settings.queue;
    this.name = settings.name;
    this.#events = new EventPublisher(this.queue);
    this.#slots = new Slots({
      concurrency: settings.concurrency,
      handle: (delivery) => this.#handle(delivery),
      onError: (error) => this.#logger.error("Task handling failed: {error}", { error }),
    });
    const timeoutMs = settings.taskTimeoutMs;
    this.#deadlines = new Deadlines(timeoutMs, () => new TaskTimeoutError(timeoutMs));
    this.#outcomes = new Outcomes({
      queue: this.queue,
      worker: this.name,
      maxAttempts: settings.maxAttempts,
      retryDelayMs: settings.retryDelayMs,
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
    return this.#settings.prefetch;
  }

  get concurrency(): number {
    return this.#settings.concurrency;
  }

  get ready(): boolean {
    return this.#session?.consumerTag !== undefined && !this.#session.closed && !this.#stopping;
  }

  get reconnects(): number {
    return Math.max(0, this.#sessions - 1);
  }

  async start(): Promise<void> {
    this.#infoEnabled = this.#logger.isEnabledFor("info");
    if (
      this.#settings.taskTimeoutMs === 0 ||
      this.#settings.taskTimeoutMs >= BROKER_CONSUMER_TIMEOUT_MS
    ) {
      this.#logger.warn(
        "Task timeout {timeout} is not below the broker's 30-minute consumer timeout: a task " +
          "running that long has its channel closed and is redelivered",
        {
          timeout: this.#settings.taskTimeoutMs === 0
            ? "none"
            : `${this.#settings.taskTimeoutMs / 1000} s`,
        },
      );
    }
    this.#connection = await openConnection({
      url: this.#settings.url,
      heartbeat: this.#settings.heartbeat,
      name: `tareas worker ${this.name}`,
      setup: (model, node) => this.#setup(model, node),
    });
    this.#connection.failed.catch((error) => {
      this.#settleClosed.reject(error);
      this.close();
    });
    this.#statusTimer = setInterval(() => this.#publishStatus(), STATUS_INTERVAL_MS);
    this.#deadlines.start();
    this.#detachMetrics = this.#settings.metrics?.attach(this);
    const { signal } = this.#settings;
    if (signal?.aborted) this.close();
    signal?.addEventListener("abort", () => this.close(), { once: true });
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
      prefetch: this.#settings.prefetch,
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
    const receive = (message: ConsumeMessage) =>
      this.#slots.receive({ session, message, fields: undefined, progress: undefined });
    await startConsuming(session, this.queue, receive, () => {
      if (this.#session !== session || this.#stopping) return;
      this.#logger.warn("The broker cancelled the consumer; reconnecting");
      model.close().catch(() => {});
    });
    this.#sessions++;
    this.#node = node;
    this.#emit(workerEvent("worker.online", this.name, { node }));
    this.#logger.info(
      "Worker {name} consuming {queue} (prefetch {prefetch}, concurrency {concurrency})",
      {
        name: this.name,
        queue: this.queue,
        prefetch: this.#settings.prefetch,
        concurrency: this.#settings.concurrency,
      },
    );
  }

  /** Handles one delivery; returns a promise only when that takes more than this turn. */
  #handle(delivery: Delivery): Promise<void> | undefined {
    const next = admit(
      readDelivery<P>(delivery.message, this.#settings.maxBody),
      this.#settings.handlers,
    );
    const { fields } = next;
    delivery.fields = fields;
    if (next.dead !== undefined) {
      this.#logger.error("Task #{seq} {taskId} dead-lettered: {reason}", {
        ...fields,
        reason: next.dead,
      });
      return this.#outcomes.deadLetter(delivery, fields, next.dead);
    }
    if (next.handler === undefined) return this.#outcomes.postpone(delivery, fields, next.waitMs);
    const { handler, task, attempt } = next;
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
                timeScale: this.#settings.timeScale,
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
    const replyTo = replyQueueOf(delivery, this.queue);
    if (replyTo === undefined) {
      this.#complete(delivery, fields, since, started);
      return;
    }
    // The result goes to its caller, confirmed, before the task counts as completed and is acked.
    return sendResult(delivery, replyTo, fields.taskId, result).then(
      () => this.#complete(delivery, fields, since, started),
      (error) => this.#afterFailure(delivery, fields, attempt, since, started, error),
    );
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
    const replyTo = replyQueueOf(delivery, this.queue);
    if (replyTo !== undefined) sendProgress(delivery, replyTo, fields.taskId, value);
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
