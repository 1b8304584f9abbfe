/**
 * The worker as a library: consumes the work queue, runs a handler per task, and acks a task only
 * once its handler has finished, on the channel that delivered it. A failing attempt waits in a
 * delay queue and comes back; a task that keeps failing, or that is not a task, is dead-lettered
 * with its reason. Whatever happens, every delivery ends acked, retried or dead-lettered.
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
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from "../../deps/amqplib.ts";
import type { Logger } from "../../deps/logtape.ts";
import { abandonOnAbort, isThenable } from "../async.ts";
import { isoTime } from "../clock.ts";
import { type Connection, openConnection } from "../connection.ts";
import { errorMessage, TaskFormatError, TaskTimeoutError, UsageError } from "../errors.ts";
import { EventPublisher } from "../event_publisher.ts";
import { undecodableReason } from "../header_guard.ts";
import {
  MAX_REASON,
  STATUS_INTERVAL_MS,
  type TareasEvent,
  type TaskEvent,
  type WorkerEvent,
  workerEvent,
} from "../events.ts";
import type { TaskHandler } from "../handler.ts";
import { log } from "../log.ts";
import {
  afterFailure,
  type Attempt,
  deliveriesUsedUp,
  readAttempt,
  republishProperties,
} from "../rules.ts";
import { AWAITED_HEADER, decodeTask, MAX_ID_LENGTH, type Task } from "../task.ts";
import { checkNumber, checkPrefetch, checkQueue, checkWorkerName } from "../options.ts";
import { deadQueue, declareDelayQueue, declareTopology } from "../topology.ts";
import { withProcessSpan } from "../trace.ts";
import { DEFAULT_URL, parseBrokerUrls } from "../url.ts";

/** RabbitMQ's default consumer timeout: a delivery unacked for longer closes the channel. */
export const BROKER_CONSUMER_TIMEOUT_MS = 30 * 60_000;

/**
 * Options of {@linkcode createWorker}.
 *
 * @example
 * ```ts
 * const options: WorkerOptions<{ url: string }> = {
 *   queue: "downloads",
 *   concurrency: 8,
 *   taskTimeout: 30_000,
 *   handler: (task, { signal }) => fetch(task.payload.url, { signal }),
 * };
 * await using worker = await createWorker(options);
 * ```
 */
export interface WorkerOptions<P = unknown> {
  /** Runs each task: resolve when it is done, throw to fail the attempt. */
  handler: TaskHandler<P>;
  /** Broker URL; its password is never printed. @default {"amqp://guest:guest@127.0.0.1:5672"} */
  url?: string;
  /** Work queue. @default {"tareas_distribuidas"} */
  queue?: string;
  /** Handlers running at once. @default {1} */
  concurrency?: number;
  /** Unacked deliveries the broker may hand this worker at once (≥ concurrency). @default {concurrency} */
  prefetch?: number;
  /** Attempts before a failing task is dead-lettered. @default {5} */
  maxAttempts?: number;
  /** Delay before the first retry, in milliseconds; it doubles on each retry, up to an hour. @default {1000} */
  retryDelay?: number;
  /** Longest a handler may run, in milliseconds, 0 for no limit. @default {600_000} */
  taskTimeout?: number;
  /** Largest message body accepted, in bytes; larger ones are dead-lettered. @default {1_048_576} */
  maxBody?: number;
  /** Name in events and logs. @default {`<hostname>-<pid>`} */
  name?: string;
  /** AMQP heartbeat in seconds, 0 to disable. @default {15} */
  heartbeat?: number;
  /** Seconds of simulated work per unit of complexity, for the built-in handler. @default {1} */
  timeScale?: number;
  /** Aborting it closes the worker gracefully, as {@linkcode Worker.close} does. */
  signal?: AbortSignal;
}

/**
 * A lifecycle event of a worker: the same data it publishes on `<queue>.events`.
 *
 * @example
 * ```ts
 * worker.addEventListener("task.completed", (event: WorkerLifecycleEvent<TaskEvent>) => {
 *   console.log(`${event.detail.taskId} took ${event.detail.durationMs} ms`);
 * });
 * ```
 */
export class WorkerLifecycleEvent<E extends TareasEvent = TareasEvent> extends Event {
  /** The event as published. */
  readonly detail: E;

  /** Wraps a published event for local listeners. */
  constructor(detail: E) {
    super(detail.type);
    this.detail = detail;
  }
}

/**
 * The events a {@linkcode Worker} dispatches, by type.
 *
 * @example
 * ```ts
 * worker.addEventListener("task.failed", (e) => console.warn(e.detail.taskId, e.detail.reason));
 * ```
 */
export interface WorkerEventMap {
  /** Consuming (after the start and after every reconnect). */
  "worker.online": WorkerLifecycleEvent<WorkerEvent>;
  /** Periodic state report. */
  "worker.status": WorkerLifecycleEvent<WorkerEvent>;
  /** A handler started. */
  "task.started": WorkerLifecycleEvent<TaskEvent>;
  /** A handler finished; the task is acked right after. */
  "task.completed": WorkerLifecycleEvent<TaskEvent>;
  /** An attempt failed; the task will be retried. */
  "task.failed": WorkerLifecycleEvent<TaskEvent>;
  /** The task was dead-lettered, with its reason. */
  "task.dead": WorkerLifecycleEvent<TaskEvent>;
  /** Closed: no longer consuming, nothing in hand. */
  "worker.offline": WorkerLifecycleEvent<WorkerEvent>;
}

/**
 * A running worker; see {@linkcode createWorker}.
 *
 * @example
 * ```ts
 * const worker = await createWorker({ handler: (task) => console.log(task.payload) });
 * console.log(worker.name, worker.inHand);
 * await worker.close();
 * ```
 */
export interface Worker extends EventTarget, AsyncDisposable {
  /** The name in its events and logs. */
  readonly name: string;
  /** The work queue it consumes. */
  readonly queue: string;
  /** Deliveries held: running plus waiting for a free slot. */
  readonly inHand: number;
  /**
   * Settles when the worker has stopped: resolves after {@linkcode Worker.close}, rejects when
   * its connection gave up for good (a configuration error).
   */
  readonly closed: Promise<void>;
  /**
   * Stops gracefully: stops consuming, lets the tasks in hand finish and acks them, publishes
   * `worker.offline`, closes the connection. Idempotent.
   */
  close(): Promise<void>;
  /** Listens to one of the worker's lifecycle events. */
  addEventListener<K extends keyof WorkerEventMap>(
    type: K,
    listener: (event: WorkerEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /** Listens to any event (EventTarget's signature). */
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
}

/**
 * Starts a worker and resolves once it is consuming.
 *
 * @throws {ConfigError} when the broker refuses the credentials or the queue's arguments.
 * @throws {BrokerUnreachableError} when the broker cannot be reached after a few retries.
 * @example
 * ```ts
 * const worker = await createWorker({ handler: (task) => console.log(task.payload) });
 * await worker.close();
 * ```
 */
export async function createWorker<P = unknown>(
  options: WorkerOptions<P>,
): Promise<Worker> {
  const worker = new TareasWorker<P>(options);
  await worker.start();
  return worker;
}

/** Channels of one connection; replaced after every reconnect. */
interface Session {
  consume: Channel;
  /** Confirmed publishes: retries and dead letters, acked only once the broker has them. */
  publish: ConfirmChannel;
  delayQueues: Map<number, Promise<string>>;
  consumerTag?: string;
  /** The tasks running from its deliveries, aborted when a channel of the session closes. */
  runs: Set<Run>;
  /** Deliveries not yet acked or rejected, in delivery order. */
  delivered: ConsumeMessage[];
  /** Deliveries finished and waiting for their ack. */
  finished: Set<ConsumeMessage>;
}

/** One delivery and the session it arrived on (its ack is only valid there). */
interface Delivery {
  session: Session;
  message: ConsumeMessage;
}

/** The fields of a task event that describe the delivery. */
type DeliveryFields = Pick<TaskEvent, "taskId" | "seq" | "attempt" | "redelivered">;

class TareasWorker<P> extends EventTarget implements Worker {
  readonly name: string;
  readonly queue: string;
  readonly closed: Promise<void>;
  #url: string;
  #heartbeat: number;
  #handler: TaskHandler<P>;
  #concurrency: number;
  #prefetch: number;
  #maxAttempts: number;
  #retryDelayMs: number;
  #taskTimeoutMs: number;
  #maxBody: number;
  #timeScale: number;
  #signal: AbortSignal | undefined;
  #logger: Logger = log("worker");
  #handlerLogger: Logger = log("handler");
  #events: EventPublisher;
  #connection: Connection | undefined;
  #session: Session | undefined;
  #stopping = false;
  #closing: Promise<void> | undefined;
  #waiting: Delivery[] = [];
  /** Deliveries whose handling has begun and not ended. */
  #active = 0;
  /** Called when the last active delivery ends (set while closing). */
  #drained: (() => void) | undefined;
  /** Tasks running, with the time their handler must end by. */
  #runs = new Set<Run>();
  #sweeper: ReturnType<typeof setInterval> | undefined;
  /** Lifecycle event types with listeners: the others are not dispatched at all. */
  #listened = new Map<string, number>();
  #infoEnabled = false;
  #completed = 0;
  #failed = 0;
  /**
   * Completions in each second of the last minute, by epoch second modulo 60, for the status
   * event (a list of completion times held 1.2 million numbers at 20,000 tasks a second).
   */
  #perSecond: number[] = new Array(60).fill(0);
  /** The epoch second `#perSecond` was last brought up to. */
  #second = 0;
  #statusTimer: ReturnType<typeof setInterval> | undefined;
  #flushScheduled = false;
  /** A finished delivery waiting for its ack is of a task someone waits for. */
  #awaitedFinished = false;
  /** The broker node (`host:port`) of the current connection. */
  #node = "";
  #settleClosed!: { resolve: () => void; reject: (error: unknown) => void };

  constructor(options: WorkerOptions<P>) {
    super();
    if (typeof options.handler !== "function") {
      throw new UsageError(
        "Invalid handler: createWorker needs the function that runs each task " +
          "(its handler option; sleepHandler is the demo's simulated work)",
      );
    }
    this.#handler = options.handler;
    this.#url = options.url ?? DEFAULT_URL;
    parseBrokerUrls(this.#url);
    this.queue = checkQueue(options.queue);
    this.name = checkWorkerName(options.name ?? defaultName());
    this.#heartbeat = checkNumber("heartbeat", options.heartbeat);
    this.#concurrency = checkNumber("concurrency", options.concurrency);
    this.#prefetch = checkNumber("prefetch", options.prefetch ?? this.#concurrency);
    checkPrefetch(this.#prefetch, this.#concurrency);
    this.#maxAttempts = checkNumber("maxAttempts", options.maxAttempts);
    this.#retryDelayMs = checkNumber("retryDelay", options.retryDelay);
    this.#taskTimeoutMs = checkNumber("taskTimeout", options.taskTimeout);
    this.#maxBody = checkNumber("maxBody", options.maxBody);
    this.#timeScale = checkNumber("timeScale", options.timeScale);
    this.#signal = options.signal;
    this.#events = new EventPublisher(this.queue);
    this.closed = new Promise((resolve, reject) => this.#settleClosed = { resolve, reject });
    this.closed.catch(() => {});
  }

  get inHand(): number {
    return this.#active + this.#waiting.length;
  }

  async start(): Promise<void> {
    // Checked once: a line per task costs even when its level is off.
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
    if (this.#taskTimeoutMs > 0) {
      this.#sweeper = setInterval(() => this.#sweep(), Math.min(100, this.#taskTimeoutMs / 4));
    }
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
    this.#logger.info("Stopping: finishing {count} task(s) in hand", { count: this.#active });
    this.#waiting.length = 0; // Never started: the connection's close returns them to the queue.
    const session = this.#session;
    if (session?.consumerTag) {
      await session.consume.cancel(session.consumerTag).catch(() => {});
    }
    if (this.#active > 0) await new Promise<void>((resolve) => this.#drained = resolve);
    clearInterval(this.#sweeper);
    this.#flush();
    this.#emit(workerEvent("worker.offline", this.name));
    await this.#events.flush();
    this.#events.stop();
    await this.#events.attach(undefined);
    await this.#connection?.close();
    this.#logger.info("Worker {name} stopped", { name: this.name });
    this.#settleClosed.resolve();
  }

  #emit(event: TareasEvent): void {
    this.#events.publish(event);
    if (this.#listened.has(event.type)) this.dispatchEvent(new WorkerLifecycleEvent(event));
  }

  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    super.addEventListener(type, listener, options);
    this.#listened.set(type, (this.#listened.get(type) ?? 0) + 1);
  }

  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void {
    super.removeEventListener(type, listener, options);
    const count = (this.#listened.get(type) ?? 0) - 1;
    if (count > 0) this.#listened.set(type, count);
    else this.#listened.delete(type);
  }

  #publishStatus(): void {
    this.#toSecond(Math.floor(Date.now() / 1000));
    this.#emit(workerEvent("worker.status", this.name, {
      inHand: this.inHand,
      completed: this.#completed,
      failed: this.#failed,
      lastMinute: this.#perSecond.reduce((sum, count) => sum + count, 0),
      ...(this.#node === "" ? {} : { node: this.#node }),
    }));
  }

  /** Empties the buckets of the seconds that passed since the last completion or report. */
  #toSecond(second: number): void {
    for (let s = Math.max(this.#second + 1, second - 59); s <= second; s++) {
      this.#perSecond[s % 60] = 0;
    }
    this.#second = second;
  }

  async #setup(model: ChannelModel, node: string): Promise<void> {
    const publish = await model.createConfirmChannel();
    const consume = await model.createChannel();
    const channels = [[consume, "consume"], [publish, "publish"]] as const;
    for (const [channel, what] of channels) {
      channel.on(
        "error",
        (error: Error) =>
          this.#logger.debug("The {what} channel failed: {cause}", {
            what,
            cause: errorMessage(error),
          }),
      );
    }
    await declareTopology(publish, this.queue, model);
    await consume.prefetch(this.#prefetch);
    const session: Session = {
      consume,
      publish,
      delayQueues: new Map(),
      runs: new Set(),
      delivered: [],
      finished: new Set(),
    };
    for (const [channel, what] of channels) {
      channel.on("close", () => {
        // Its deliveries are back in the queue: the broker hands them to another worker.
        for (const run of session.runs) run.controller.abort(new ConnectionLostError());
        session.runs.clear();
        if (this.#session !== session) return;
        this.#session = undefined;
        this.#events.attach(undefined);
        this.#waiting.length = 0; // Their channel is gone: the broker requeues them.
        if (this.#stopping) return;
        // A channel closed under a live connection (an error, a consumer timeout): start over.
        this.#logger.warn("The {what} channel closed; reconnecting", { what });
        model.close().catch(() => {});
      });
    }
    this.#session = session;
    await this.#events.attach(model);
    if (this.#stopping) return;
    const { consumerTag } = await consume.consume(this.queue, (message) => {
      if (message) {
        session.delivered.push(message);
        return this.#receive({ session, message });
      }
      // The broker cancelled the consumer (queue deleted, consumer timeout on 4.3+).
      if (this.#session === session && !this.#stopping) {
        this.#logger.warn("The broker cancelled the consumer; reconnecting");
        model.close().catch(() => {});
      }
    });
    session.consumerTag = consumerTag;
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

  #receive(delivery: Delivery): void {
    if (this.#active >= this.#concurrency) {
      this.#waiting.push(delivery);
      return;
    }
    this.#active++;
    this.#run(delivery);
  }

  /**
   * Handles a delivery, then the waiting ones that take its slot. Tasks whose handler finished at
   * once (a synchronous handler) follow each other in this loop, with no promise and no recursion.
   */
  #run(first: Delivery): void {
    let delivery: Delivery | undefined = first;
    while (delivery !== undefined) {
      let pending: Promise<void> | undefined;
      try {
        pending = this.#handle(delivery)?.catch((error) => this.#handlingFailed(error));
      } catch (error) {
        this.#handlingFailed(error);
      }
      if (pending !== undefined) {
        pending.then(() => {
          const next = this.#freeSlot();
          if (next !== undefined) this.#run(next);
        });
        return;
      }
      delivery = this.#freeSlot();
    }
  }

  /** Ends a delivery's turn: returns the waiting delivery that takes its slot, if any. */
  #freeSlot(): Delivery | undefined {
    const next = this.#waiting.shift();
    if (next === undefined && --this.#active === 0) this.#drained?.();
    return next;
  }

  #handlingFailed(error: unknown): void {
    this.#logger.error("Task handling failed: {error}", { error });
  }

  /** Handles one delivery; returns a promise only when that takes more than this turn. */
  #handle(delivery: Delivery): Promise<void> | undefined {
    const { message } = delivery;
    const redelivered = message.fields.redelivered;
    let attempt: Attempt = { attempt: 1, returns: 0 };
    let task: Task<P>;
    try {
      attempt = readAttempt(message.properties.headers, redelivered);
      // Headers amqplib could not decode, replaced by the connection's guard: dead-letter it.
      const undecodable = undecodableReason(message.properties.headers);
      if (undecodable !== undefined) {
        throw new TaskFormatError(`Headers cannot be decoded: ${undecodable}`);
      }
      task = decodeTask(message.content, this.#maxBody) as Task<P>;
    } catch (error) {
      if (!(error instanceof TaskFormatError)) throw error;
      const id = messageIdOf(message);
      this.#logger.error("Malformed message {id} dead-lettered: {reason}", {
        id,
        reason: error.message,
      });
      const fields = { taskId: id, seq: 0, attempt: attempt.attempt, redelivered };
      return this.#deadLetter(delivery, fields, error.message);
    }
    const fields: DeliveryFields = {
      taskId: task.id,
      seq: task.seq,
      attempt: attempt.attempt,
      redelivered,
    };
    if (deliveriesUsedUp(attempt)) {
      // Should this delivery end without an ack too, the broker would drop the task with no
      // event, and whoever waits for it would never hear: dead-letter it here, visibly.
      const reason = `Delivered ${attempt.returns + 1} times without an ack: each run crashed ` +
        "its worker or lost its connection";
      this.#logger.error("Task #{seq} {taskId} dead-lettered: {reason}", { ...fields, reason });
      return this.#deadLetter(delivery, fields, reason);
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
    let started = this.#listened.has("task.started") ? emitStarted() : undefined;
    if (this.#infoEnabled) {
      this.#logger.info(
        "Started task #{seq} {taskId} (complexity {complexity}, attempt {attempt}{again})",
        { ...fields, complexity: task.complexity, again: redelivered ? ", redelivered" : "" },
      );
    }
    const since = performance.now();
    let running: Promise<void> | undefined;
    try {
      running = withProcessSpan(
        this.queue,
        task,
        message.properties.headers?.traceparent,
        () => this.#runHandler(task, attempt.attempt, redelivered, delivery.session, since),
      );
    } catch (error) {
      return this.#afterFailure(delivery, fields, attempt, since, started, error);
    }
    if (running === undefined) return this.#afterSuccess(delivery, fields, since, started);
    started ??= emitStarted();
    return running.then(
      () => this.#afterSuccess(delivery, fields, since, started),
      (error) => this.#afterFailure(delivery, fields, attempt, since, started, error),
    );
  }

  #afterSuccess(
    delivery: Delivery,
    fields: DeliveryFields,
    since: number,
    started: TaskEvent | undefined,
  ): undefined {
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
      seq: fields.seq,
      attempt: fields.attempt,
      redelivered: fields.redelivered,
      durationMs,
    });
    this.#completed++;
    const second = Math.floor(now / 1000);
    if (second !== this.#second) this.#toSecond(second);
    this.#perSecond[second % 60]!++;
    if (this.#infoEnabled) {
      this.#logger.info("Completed task #{seq} {taskId} in {durationMs} ms", {
        ...fields,
        durationMs,
      });
    }
    this.#settle(delivery, "ack");
  }

  async #afterFailure(
    delivery: Delivery,
    fields: DeliveryFields,
    attempt: Attempt,
    since: number,
    started: TaskEvent | undefined,
    error: unknown,
  ): Promise<void> {
    if (started !== undefined) this.#events.withdraw(started);
    if (error instanceof ConnectionLostError) {
      // The broker has already requeued it: neither a failure nor a retry of ours.
      this.#logger.warn("Abandoned task #{seq} {taskId}: {reason}", {
        ...fields,
        reason: error.message,
      });
      return;
    }
    const durationMs = Math.round(performance.now() - since);
    const reason = errorMessage(error).slice(0, MAX_REASON - 100);
    this.#failed++;
    const next = afterFailure(attempt.attempt, {
      maxAttempts: this.#maxAttempts,
      retryDelayMs: this.#retryDelayMs,
    });
    if (next.action === "dead") {
      this.#logger.error(
        "Task #{seq} {taskId} failed on attempt {attempt}, dead-lettered: " +
          "{reason}",
        { ...fields, reason },
      );
      await this.#deadLetter(
        delivery,
        fields,
        `${reason} (after ${attempt.attempt} attempts)`,
        durationMs,
      );
    } else {
      await this.#retry(delivery, fields, reason, durationMs, next.delayMs);
    }
  }

  /**
   * Runs the handler, started at `since` (`performance.now()`); returns a promise only when it
   * goes on after this turn.
   */
  #runHandler(
    task: Task<P>,
    attempt: number,
    redelivered: boolean,
    session: Session,
    since: number,
  ): Promise<void> | undefined {
    const controller = new AbortController();
    const { signal } = controller;
    const result = this.#handler(task, {
      signal,
      attempt,
      redelivered,
      logger: this.#handlerLogger,
      timeScale: this.#timeScale,
    });
    if (!isThenable(result)) return undefined;
    // Nothing could abort it while it ran in this turn. From now on, the session aborts it if the
    // connection that delivered the task is lost, and the sweeper if it runs past the task timeout.
    const run: Run = {
      controller,
      deadline: this.#taskTimeoutMs > 0 ? since + this.#taskTimeoutMs : Infinity,
    };
    session.runs.add(run);
    this.#runs.add(run);
    const end = () => {
      session.runs.delete(run);
      this.#runs.delete(run);
    };
    return abandonOnAbort(Promise.resolve(result), signal).then(end, (error) => {
      end();
      throw signal.aborted ? signal.reason : error;
    });
  }

  /** Aborts the handlers that ran past the task timeout; runs while the worker does. */
  #sweep(): void {
    const now = performance.now();
    for (const run of this.#runs) {
      if (now < run.deadline) continue;
      this.#runs.delete(run);
      run.controller.abort(new TaskTimeoutError(this.#taskTimeoutMs));
    }
  }

  /** Sends a failed task to a delay queue that returns it to the work queue later, then acks. */
  async #retry(
    delivery: Delivery,
    fields: DeliveryFields,
    reason: string,
    durationMs: number,
    delayMs: number,
  ): Promise<void> {
    const { session, message } = delivery;
    this.#emit({
      type: "task.failed",
      worker: this.name,
      at: isoTime(),
      ...fields,
      durationMs,
      reason,
    });
    this.#logger.warn(
      "Task #{seq} {taskId} failed on attempt {attempt}: {reason}; retry in {delayMs} ms",
      { ...fields, reason, delayMs },
    );
    try {
      let declared = session.delayQueues.get(delayMs);
      if (declared === undefined) {
        declared = declareDelayQueue(session.publish, this.queue, delayMs);
        session.delayQueues.set(delayMs, declared);
      }
      await publishConfirmed(session.publish, await declared, message.content, {
        ...republishProperties(message.properties, { "x-tareas-attempts": fields.attempt }),
      });
    } catch (error) {
      if (this.#channelGone(delivery, error)) {
        this.#logger.warn(
          "Could not schedule the retry of task {taskId}: {cause}; the broker " +
            "returns it to the queue",
          { ...fields, cause: errorMessage(error) },
        );
        return;
      }
      await this.#refuse(delivery, fields, `Could not schedule a retry: ${errorMessage(error)}`);
      return;
    }
    this.#settle(delivery, "ack");
  }

  /** Copies a task to the dead-letter queue with the reason, then acks it. */
  async #deadLetter(
    delivery: Delivery,
    fields: DeliveryFields,
    reason: string,
    durationMs?: number,
  ): Promise<void> {
    const { session, message } = delivery;
    try {
      await publishConfirmed(
        session.publish,
        deadQueue(this.queue),
        message.content,
        republishProperties(message.properties, {
          "x-tareas-reason": reason,
          "x-tareas-attempts": fields.attempt,
          "x-tareas-worker": this.name,
          "x-tareas-dead-at": isoTime(),
        }),
      );
    } catch (error) {
      if (this.#channelGone(delivery, error)) {
        this.#logger.warn(
          "Could not dead-letter task {taskId}: {cause}; the broker returns it " +
            "to the queue",
          { ...fields, cause: errorMessage(error) },
        );
        return;
      }
      await this.#refuse(delivery, fields, `${reason}; could not copy it: ${errorMessage(error)}`);
      return;
    }
    this.#emit({
      type: "task.dead",
      worker: this.name,
      at: isoTime(),
      ...fields,
      ...(durationMs === undefined ? {} : { durationMs }),
      reason,
    });
    this.#settle(delivery, "ack");
  }

  /**
   * Rejects a delivery without requeueing it, so that the queue's own at-least-once
   * dead-lettering moves it to `<queue>.dead` as it came: the last resort when tareas cannot
   * publish the copy itself (a header the client cannot encode, a broker refusal).
   */
  #refuse(delivery: Delivery, fields: DeliveryFields, reason: string): Promise<void> {
    this.#logger.error(
      "Task {taskId} rejected to the dead-letter queue by the broker: {reason}",
      { ...fields, reason },
    );
    this.#emit({
      type: "task.dead",
      worker: this.name,
      at: isoTime(),
      ...fields,
      reason: reason.slice(0, MAX_REASON),
    });
    this.#settle(delivery, "reject");
    return Promise.resolve();
  }

  /** Whether a failed publish failed because the delivery's channel or connection is gone. */
  #channelGone(delivery: Delivery, error: unknown): boolean {
    return delivery.session !== this.#session ||
      /channel (closed|closing|ended)|connection closed/i.test(errorMessage(error));
  }

  /**
   * Acks or rejects a delivery on the channel it came from; one from a dead channel is dropped
   * (the broker requeued it). Every ack goes out after the events before it that someone listens
   * to, so that a task acked is never a task whose completion its listener did not hear of (events
   * nobody is bound to wait for their window and a probe). Unless the prefetch is used up, acks
   * wait for the end of the turn and go out together: one ack covers a run of contiguous finished
   * deliveries (those of one socket read, with a synchronous handler).
   */
  #settle({ session, message }: Delivery, how: "ack" | "reject"): void {
    if (session !== this.#session) {
      this.#logger.debug(
        "Dropped the ack of a delivery from a closed channel: the broker " +
          "requeued it",
      );
      return;
    }
    if (how === "reject") {
      this.#events.sendNow();
      remove(session.delivered, message);
      try {
        session.consume.nack(message, false, false);
      } catch (error) {
        this.#logger.debug("Dropped a reject: {cause}", { cause: errorMessage(error) });
      }
      return;
    }
    session.finished.add(message);
    if (message.properties.headers?.[AWAITED_HEADER] === true) this.#awaitedFinished = true;
    if (session.delivered.length >= this.#prefetch) {
      this.#flush(); // The prefetch is used up: the broker sends nothing more until an ack.
    } else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  /**
   * Publishes the queued events someone listens to (all of them before the ack of a task someone
   * waits for), then sends the acks of the finished deliveries.
   */
  #flush(): void {
    this.#flushScheduled = false;
    if (this.#awaitedFinished) this.#events.sendNow();
    else this.#events.sendListened();
    this.#awaitedFinished = false;
    const session = this.#session;
    if (session === undefined || session.finished.size === 0) return;
    const { delivered, finished, consume } = session;
    let last: ConsumeMessage | undefined;
    let covered = 0;
    while (delivered.length > 0 && finished.has(delivered[0]!)) {
      last = delivered.shift()!;
      finished.delete(last);
      covered++;
    }
    try {
      if (last !== undefined) consume.ack(last, covered > 1);
      for (const message of finished) {
        remove(delivered, message);
        consume.ack(message);
      }
    } catch (error) {
      // The channel closed a moment ago and its close event has not run yet.
      this.#logger.debug("Dropped an ack: {cause}", { cause: errorMessage(error) });
    }
    finished.clear();
  }
}

/** Publishes to a queue with a broker confirm; rejects when the broker refuses or the channel closes. */
function publishConfirmed(
  channel: ConfirmChannel,
  queue: string,
  content: ConsumeMessage["content"],
  options: Parameters<ConfirmChannel["sendToQueue"]>[2],
): Promise<void> {
  return new Promise((resolve, reject) => {
    try {
      channel.sendToQueue(queue, content, options, (error) => error ? reject(error) : resolve());
    } catch (error) {
      reject(error);
    }
  });
}

/** The message's id as a task id for events: untrusted, so only a short non-empty string. */
function messageIdOf(message: ConsumeMessage): string {
  const id = message.properties.messageId;
  return typeof id === "string" && id.length > 0 && id.length <= MAX_ID_LENGTH
    ? id
    : "(no message id)";
}

/**
 * `<hostname>-<pid>`, or `worker-<pid>` when the program may not read the host name: asking for
 * it would stop a program at a terminal at a permission prompt.
 */
function defaultName(): string {
  const { state } = Deno.permissions.querySync({ name: "sys", kind: "hostname" });
  return state === "granted" ? `${Deno.hostname()}-${Deno.pid}` : `worker-${Deno.pid}`;
}

/** A task's handler is abandoned: the connection that delivered the task was lost. */
class ConnectionLostError extends Error {
  constructor() {
    super("the connection that delivered it was lost; the broker gives it to another worker");
    this.name = "ConnectionLostError";
  }
}

/** Removes `item` from `list`, if there. */
function remove<T>(list: T[], item: T): void {
  const index = list.indexOf(item);
  if (index !== -1) list.splice(index, 1);
}

/** A task's handler while it runs. */
interface Run {
  controller: AbortController;
  /** `performance.now()` by which it must end (Infinity without a task timeout). */
  deadline: number;
}
