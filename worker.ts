/**
 * The worker: consumes the work queue and runs each task, acking it only once its handler has
 * finished. Run `deno task work --help` for flags.
 * @module
 */
import { Buffer } from "node:buffer";
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Options } from "amqplib";
import { runMain } from "./lib/cli.ts";
import { parseWorkerArgs, WORKER_HELP, type WorkerConfig } from "./lib/config.ts";
import { describe, openConnection } from "./lib/connection.ts";
import { TaskFormatError, TaskTimeoutError } from "./lib/errors.ts";
import {
  eventsExchange,
  STATUS_INTERVAL_MS,
  type TareasEvent,
  type TaskEvent,
  workerEvent,
} from "./lib/events.ts";
import { loadHandler, sleepHandler, type TaskHandler } from "./lib/handler.ts";
import { log } from "./lib/log.ts";
import { decodeTask, type Task } from "./lib/task.ts";
import { deadQueue, declareDelayQueue, declareTopology, DELIVERY_LIMIT } from "./lib/topology.ts";
import { withProcessSpan } from "./lib/trace.ts";

/** Longest wait between retries, whatever `--retry-delay` and the attempt number. */
const MAX_RETRY_DELAY_MS = 3_600_000;

/** RabbitMQ's default consumer timeout: a delivery unacked for longer closes the channel. */
const BROKER_CONSUMER_TIMEOUT_MS = 30 * 60_000;

/** Headers the broker adds per hop; a retry starts a new hop without them. */
const HOP_HEADERS = /^x-(delivery-count|death|first-death-.*|last-death-.*)$/;

/** Channels of one connection; replaced after every reconnect. */
interface Session {
  model: ChannelModel;
  consume: Channel;
  /** Confirmed publishes: retries and dead letters, acked only once the broker has them. */
  publish: ConfirmChannel;
  /** Events: fire and forget, so they cost no confirm round trip per task. */
  events: Channel;
  delayQueues: Map<number, Promise<string>>;
  consumerTag?: string;
}

/** One delivery and the session it arrived on (its ack is only valid there). */
interface Delivery {
  session: Session;
  message: ConsumeMessage;
}

/** Runs the worker until it is stopped by a signal; resolves with the exit code. */
async function work(config: WorkerConfig): Promise<number> {
  const logger = log("worker");
  const handler: TaskHandler = config.handler ? await loadHandler(config.handler) : sleepHandler;
  if (config.taskTimeoutMs === 0 || config.taskTimeoutMs >= BROKER_CONSUMER_TIMEOUT_MS) {
    logger.warn(
      "Task timeout {timeout} is not below the broker's 30-minute consumer timeout: a task " +
        "running that long has its channel closed and is redelivered",
      { timeout: config.taskTimeoutMs === 0 ? "none" : `${config.taskTimeoutMs / 1000} s` },
    );
  }
  const crashAt = Deno.env.get("TAREAS_CRASH_AT");

  let session: Session | undefined;
  let stopping = false;
  const waiting: Delivery[] = [];
  const running = new Set<Promise<void>>();
  const counts = { completed: 0, failed: 0 };
  const recent: number[] = []; // Completion times of the last minute, for the status event.

  function emit(event: TareasEvent): void {
    const events = session?.events;
    if (!events) return;
    try {
      events.publish(
        eventsExchange(config.queue),
        event.type,
        Buffer.from(JSON.stringify(event)),
        { contentType: "application/json" },
      );
    } catch (error) {
      logger.debug("Event {type} not published: {cause}", {
        type: event.type,
        cause: describe(error),
      });
    }
  }

  /** Resolves once the broker has processed every event published so far (a channel round trip). */
  async function flushEvents(): Promise<void> {
    await session?.events.checkExchange(eventsExchange(config.queue)).catch(() => {});
  }

  /** Publishes with a broker confirm; rejects when the broker refuses or the channel closes. */
  function publishConfirmed(
    publish: ConfirmChannel,
    routingKey: string,
    content: Buffer,
    options: Options.Publish,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      try {
        publish.publish("", routingKey, content, options, (error) => {
          if (error) reject(new Error(`Broker did not confirm the publish to ${routingKey}`));
          else resolve();
        });
      } catch (error) {
        reject(error);
      }
    });
  }

  /** Acks a delivery on the channel it came from; a delivery from a dead channel is dropped. */
  function ack({ session: from, message }: Delivery): void {
    if (from !== session) {
      logger.debug("Dropped the ack of a delivery from a closed channel: the broker requeued it");
      return;
    }
    try {
      from.consume.ack(message);
    } catch (error) {
      // The channel closed a moment ago and its close event has not run yet: same as above.
      logger.debug("Dropped an ack: {cause}", { cause: describe(error) });
    }
  }

  function receive(delivery: Delivery): void {
    if (running.size >= config.concurrency) {
      waiting.push(delivery);
      return;
    }
    const run = handle(delivery).catch((error) =>
      logger.error("Task handling failed: {error}", { error })
    ).finally(() => {
      running.delete(run);
      const next = waiting.shift();
      if (next && !stopping) receive(next);
    });
    running.add(run);
  }

  async function handle(delivery: Delivery): Promise<void> {
    const { message } = delivery;
    const attempt = attemptOf(message);
    const redelivered = message.fields.redelivered;
    let task: Task;
    try {
      task = decodeTask(message.content, config.maxBodyBytes);
    } catch (error) {
      if (!(error instanceof TaskFormatError)) throw error;
      const id = message.properties.messageId ?? "(no message id)";
      logger.error("Malformed message {id} dead-lettered: {reason}", { id, reason: error.message });
      await deadLetter(delivery, { taskId: id, seq: 0, attempt, redelivered }, error.message);
      return;
    }
    const base = { taskId: task.id, seq: task.seq, attempt, redelivered };
    const returns = message.properties.headers?.["x-delivery-count"];
    if (typeof returns === "number" && returns >= DELIVERY_LIMIT) {
      // Should this delivery end without an ack too, the broker would dead-letter the task with
      // no event, and whoever waits for it would never hear: dead-letter it here, visibly.
      const reason = `Delivered ${returns + 1} times without an ack: each run crashed its ` +
        "worker or lost its connection";
      logger.error("Task #{seq} {id} dead-lettered: {reason}", { ...base, id: task.id, reason });
      await deadLetter(delivery, base, reason);
      return;
    }
    emit({ type: "task.started", worker: config.name, at: new Date().toISOString(), ...base });
    logger.info(
      "Started task #{seq} {id} (complexity {complexity}, attempt {attempt}{redelivered})",
      {
        ...base,
        id: task.id,
        complexity: task.complexity,
        redelivered: redelivered ? ", redelivered" : "",
      },
    );
    const started = performance.now();
    try {
      await withProcessSpan(
        config.queue,
        task,
        message.properties.headers?.traceparent,
        () => runHandler(task, attempt, redelivered),
      );
    } catch (error) {
      const durationMs = Math.round(performance.now() - started);
      const reason = describe(error);
      counts.failed++;
      if (attempt >= config.maxAttempts) {
        logger.error("Task #{seq} {id} failed on attempt {attempt}, dead-lettered: {reason}", {
          ...base,
          id: task.id,
          reason,
        });
        await deadLetter(delivery, base, `${reason} (after ${attempt} attempts)`);
      } else {
        await retry(delivery, { ...base, durationMs }, reason);
      }
      return;
    }
    const durationMs = Math.round(performance.now() - started);
    emit({
      type: "task.completed",
      worker: config.name,
      at: new Date().toISOString(),
      ...base,
      durationMs,
    });
    counts.completed++;
    recent.push(Date.now());
    logger.info("Completed task #{seq} {id} in {durationMs} ms", {
      ...base,
      id: task.id,
      durationMs,
    });
    if (crashAt === "after-completed") {
      // Test-only crash point: die once the broker has the completion event, before the ack.
      await flushEvents();
      Deno.kill(Deno.pid, "SIGKILL");
    }
    ack(delivery);
  }

  async function runHandler(task: Task, attempt: number, redelivered: boolean): Promise<void> {
    const controller = new AbortController();
    const timer = config.taskTimeoutMs > 0
      ? setTimeout(
        () => controller.abort(new TaskTimeoutError(config.taskTimeoutMs)),
        config.taskTimeoutMs,
      )
      : undefined;
    const { signal } = controller;
    try {
      await new Promise<void>((resolve, reject) => {
        // A handler that ignores its signal is abandoned when it fires; its promise is left behind.
        signal.addEventListener("abort", () => reject(signal.reason), { once: true });
        Promise.resolve()
          .then(() =>
            handler(task, {
              signal,
              attempt,
              redelivered,
              logger: log("handler"),
              timeScale: config.timeScale,
            })
          )
          .then(() => resolve(), reject);
      });
    } catch (error) {
      throw signal.aborted ? signal.reason : error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a failed task to a delay queue that returns it to the work queue later, then acks. */
  async function retry(
    delivery: Delivery,
    event: Omit<TaskEvent, "type" | "worker" | "at">,
    reason: string,
  ) {
    const { session: from, message } = delivery;
    const delayMs = Math.min(config.retryDelayMs * 2 ** (event.attempt - 1), MAX_RETRY_DELAY_MS);
    emit({
      type: "task.failed",
      worker: config.name,
      at: new Date().toISOString(),
      ...event,
      reason,
    });
    logger.warn(
      "Task #{seq} {taskId} failed on attempt {attempt}: {reason}; retry in {delayMs} ms",
      {
        ...event,
        reason,
        delayMs,
      },
    );
    try {
      if (!from.delayQueues.has(delayMs)) {
        from.delayQueues.set(delayMs, declareDelayQueue(from.publish, config.queue, delayMs));
      }
      const delayQueue = await from.delayQueues.get(delayMs)!;
      await publishConfirmed(from.publish, delayQueue, message.content, {
        ...copyProperties(message),
        headers: { ...hopHeaders(message), "x-tareas-attempts": event.attempt },
      });
    } catch (error) {
      // Not acked: the broker requeues the delivery when the channel closes.
      logger.warn("Could not schedule the retry of task {taskId}: {cause}", {
        ...event,
        cause: describe(error),
      });
      return;
    }
    ack(delivery);
  }

  /** Copies a task to the dead-letter queue with the reason, then acks it. */
  async function deadLetter(
    delivery: Delivery,
    event: Omit<TaskEvent, "type" | "worker" | "at">,
    reason: string,
  ): Promise<void> {
    const { session: from, message } = delivery;
    try {
      await publishConfirmed(from.publish, deadQueue(config.queue), message.content, {
        ...copyProperties(message),
        headers: {
          ...hopHeaders(message),
          "x-tareas-reason": reason,
          "x-tareas-attempts": event.attempt,
          "x-tareas-worker": config.name,
          "x-tareas-dead-at": new Date().toISOString(),
        },
      });
    } catch (error) {
      logger.warn("Could not dead-letter task {taskId}: {cause}", {
        ...event,
        cause: describe(error),
      });
      return;
    }
    emit({
      type: "task.dead",
      worker: config.name,
      at: new Date().toISOString(),
      ...event,
      reason,
    });
    ack(delivery);
  }

  async function setup(model: ChannelModel): Promise<void> {
    const publish = await model.createConfirmChannel();
    const consume = await model.createChannel();
    const events = await model.createChannel();
    const channels = [[consume, "consume"], [publish, "publish"], [events, "events"]] as const;
    for (const [channel, what] of channels) {
      channel.on(
        "error",
        (error: Error) =>
          logger.debug("The {what} channel failed: {cause}", { what, cause: describe(error) }),
      );
    }
    await declareTopology(publish, config.queue);
    await consume.prefetch(config.prefetch);
    const current: Session = { model, consume, publish, events, delayQueues: new Map() };
    for (const [channel, what] of channels) {
      channel.on("close", () => {
        if (session !== current) return;
        session = undefined;
        waiting.length = 0;
        if (stopping) return;
        // A channel closed under a live connection (an error, a consumer timeout): start over.
        logger.warn("The {what} channel closed; reconnecting", { what });
        model.close().catch(() => {});
      });
    }
    session = current;
    if (stopping) return;
    ({ consumerTag: current.consumerTag } = await consume.consume(config.queue, (message) => {
      if (message) return receive({ session: current, message });
      // The broker cancelled the consumer (queue deleted, consumer timeout on 4.3+).
      if (session === current && !stopping) {
        logger.warn("The broker cancelled the consumer; reconnecting");
        model.close().catch(() => {});
      }
    }));
    emit(workerEvent("worker.online", config.name));
    logger.info(
      "Worker {name} consuming {queue} (prefetch {prefetch}, concurrency {concurrency})",
      {
        name: config.name,
        queue: config.queue,
        prefetch: config.prefetch,
        concurrency: config.concurrency,
      },
    );
  }

  const connection = await openConnection({
    url: config.url,
    heartbeat: config.heartbeat,
    name: `tareas worker ${config.name}`,
    setup,
  });

  const status = setInterval(() => {
    while (recent.length > 0 && recent[0]! < Date.now() - 60_000) recent.shift();
    emit(workerEvent("worker.status", config.name, {
      inHand: running.size + waiting.length,
      ...counts,
      lastMinute: recent.length,
    }));
  }, STATUS_INTERVAL_MS);

  let stopSignal!: () => void;
  const stopped = new Promise<void>((resolve) => stopSignal = resolve);
  let forced = false;
  const onSignal = () => {
    if (stopping) {
      forced = true;
      logger.warn("Second signal: exiting now; the broker requeues the tasks in hand");
      Deno.exit(1);
    }
    stopping = true;
    stopSignal();
  };
  const signals = ["SIGINT", "SIGTERM"] as const;
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);

  try {
    await Promise.race([stopped, connection.failed]);
    logger.info("Stopping: finishing {count} task(s) in hand", { count: running.size });
    waiting.length = 0;
    const current = session;
    if (current?.consumerTag) await current.consume.cancel(current.consumerTag).catch(() => {});
    await Promise.allSettled([...running]);
    emit(workerEvent("worker.offline", config.name));
    await flushEvents();
    logger.info("Worker {name} stopped", { name: config.name });
  } finally {
    clearInterval(status);
    for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
    await connection.close();
  }
  return forced ? 1 : 0;
}

/** Attempt number of a delivery: failed attempts of earlier hops, plus returns in this hop, plus one. */
function attemptOf(message: ConsumeMessage): number {
  const headers = message.properties.headers ?? {};
  const earlier = headers["x-tareas-attempts"];
  const returns = headers["x-delivery-count"];
  return (typeof earlier === "number" ? earlier : 0) +
    (typeof returns === "number" ? returns : message.fields.redelivered ? 1 : 0) + 1;
}

function hopHeaders(message: ConsumeMessage): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(message.properties.headers ?? {}).filter(([key]) => !HOP_HEADERS.test(key)),
  );
}

function copyProperties(message: ConsumeMessage): Options.Publish {
  const { messageId, contentType, timestamp, correlationId, type } = message.properties;
  const options: Options.Publish = { persistent: true };
  if (messageId) options.messageId = messageId;
  if (contentType) options.contentType = contentType;
  if (timestamp) options.timestamp = timestamp;
  if (correlationId) options.correlationId = correlationId;
  if (type) options.type = type;
  return options;
}

if (import.meta.main) {
  await runMain("worker", {
    parse: () => parseWorkerArgs(Deno.args),
    help: WORKER_HELP,
    run: work,
  });
}
