/**
 * Results: what a handler returned, or why its task died, carried back to whoever enqueued it.
 *
 * A producer that wants results has a reply queue of its own, `<queue>.reply.<uuid>`: a durable
 * quorum queue, so a result waits there while the producer's connection is down or a cluster node
 * is lost; the broker deletes it {@linkcode REPLY_QUEUE_EXPIRES_MS} after its producer stopped
 * using it. Its tasks carry the queue's name in `reply_to`. A worker publishes a task's result to
 * it with a broker confirm before it acks the task, so a result is never lost to a crash; a task
 * run again (its worker was killed after the result and before the ack) sends a second one, which
 * the producer drops: a caller hears once. While a task runs, its progress goes there too, as
 * transient messages.
 *
 * On the wire a reply is a message with `correlation_id` = the task id, `type`
 * {@linkcode RESULT_TYPE} or {@linkcode PROGRESS_TYPE}, and a JSON body: `{"status":"completed",
 * "result":…}`, `{"status":"dead","reason":"…"}` or `{"progress":…}`.
 * @module
 */
import { Buffer } from "node:buffer";
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from "../deps/amqplib.ts";
import { TareasError } from "./errors.ts";
import { MAX_REASON } from "./events.ts";
import { log } from "./log.ts";

/** Largest result a handler may return, as JSON, in bytes. */
export const MAX_RESULT_BYTES = 1_048_576;

/** Largest progress value (a JSON object) a handler may report, as JSON, in bytes. */
export const MAX_PROGRESS_BYTES = 1_024;

/** How long a reply queue outlives its producer's last use of it. */
export const REPLY_QUEUE_EXPIRES_MS = 30 * 60_000;

/** The `type` of a result message. */
export const RESULT_TYPE = "tareas.result";

/** The `type` of a progress message. */
export const PROGRESS_TYPE = "tareas.progress";

/**
 * How a task ended, as its producer hears it.
 *
 * @example
 * ```ts
 * const outcome: TaskResult = { taskId: "a", status: "completed", result: { width: 200 } };
 * ```
 */
export type TaskResult =
  | { taskId: string; status: "completed"; result: unknown }
  | { taskId: string; status: "dead"; reason: string };

/** A progress value: a fraction from 0 to 1, or a small JSON object. */
export type Progress = number | Record<string, unknown>;

/** The name of a reply queue of `queue`. */
export function replyQueue(queue: string): string {
  return `${queue}.reply.${crypto.randomUUID()}`;
}

/** Whether `replyTo` names a reply queue of `queue` (a worker answers no other). */
export function isReplyQueueOf(queue: string, replyTo: unknown): replyTo is string {
  return typeof replyTo === "string" && replyTo.length <= 255 &&
    replyTo.startsWith(`${queue}.reply.`);
}

/**
 * The body of a result message for `result`, what a handler returned (`undefined` becomes null).
 *
 * @throws {TareasError} when it is not JSON or larger than {@linkcode MAX_RESULT_BYTES}.
 */
export function encodeResult(result: unknown): Buffer {
  let json: string;
  try {
    json = JSON.stringify({ status: "completed", result: result ?? null });
  } catch (error) {
    throw new TareasError(`Result is not JSON: ${(error as Error).message}`, { cause: error });
  }
  const body = Buffer.from(json);
  if (body.byteLength > MAX_RESULT_BYTES + 32) {
    throw new TareasError(
      `Result too large: ${body.byteLength} bytes as JSON, limit ${MAX_RESULT_BYTES}`,
    );
  }
  return body;
}

/** The body of the message that tells a producer its task died. */
export function encodeDead(reason: string): Buffer {
  return Buffer.from(JSON.stringify({ status: "dead", reason: reason.slice(0, MAX_REASON) }));
}

/**
 * Checks a progress value: a number from 0 to 1, or a JSON object of at most
 * {@linkcode MAX_PROGRESS_BYTES}; returns it as JSON text.
 *
 * @throws {TypeError} otherwise (a handler's mistake).
 */
export function progressJson(value: unknown): string {
  if (typeof value === "number") {
    if (value >= 0 && value <= 1) return String(value);
    throw new TypeError(`Invalid progress ${value}: expected a number from 0 to 1 or an object`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError("Invalid progress: expected a number from 0 to 1 or an object");
  }
  const json = JSON.stringify(value);
  if (json.length > MAX_PROGRESS_BYTES) {
    throw new TypeError(
      `Invalid progress: ${json.length} bytes as JSON, limit ${MAX_PROGRESS_BYTES}`,
    );
  }
  return json;
}

/** A reply as a producer reads it: checked, or undefined for anything else. */
export type Reply =
  | TaskResult
  | { taskId: string; status: "progress"; progress: Progress };

/**
 * Reads a message of a reply queue. Anyone who knows the queue's name can publish to it, so the
 * body is checked like any other untrusted input: undefined when it is not a reply.
 */
export function parseReply(
  message: Pick<ConsumeMessage, "content" | "properties">,
): Reply | undefined {
  const taskId = message.properties.correlationId;
  if (typeof taskId !== "string" || taskId.length === 0 || taskId.length > 200) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(message.content));
  } catch {
    return undefined;
  }
  if (typeof body !== "object" || body === null) return undefined;
  const value = body as Record<string, unknown>;
  if (message.properties.type === PROGRESS_TYPE) {
    const progress = value.progress;
    const valid = (typeof progress === "number" && progress >= 0 && progress <= 1) ||
      (typeof progress === "object" && progress !== null && !Array.isArray(progress));
    return valid ? { taskId, status: "progress", progress: progress as Progress } : undefined;
  }
  if (value.status === "completed" && "result" in value) {
    return { taskId, status: "completed", result: value.result };
  }
  if (value.status === "dead" && typeof value.reason === "string") {
    return { taskId, status: "dead", reason: value.reason.slice(0, MAX_REASON) };
  }
  return undefined;
}

/**
 * The reply queue of a producer: declared on each connection, consumed, and each reply handed to
 * `onReply` (results once per task id; progress as it comes).
 */
export class ReplyQueue {
  /** The queue's name, for the tasks' `reply_to`. */
  readonly name: string;
  #onReply: (reply: Reply) => void;
  /** Task ids whose result was handed on, the last 100,000, to drop the second of a rerun. */
  #answered = new Set<string>();

  /** A reply queue of work queue `queue`; nothing is declared until {@linkcode attach}. */
  constructor(queue: string, onReply: (reply: Reply) => void) {
    this.name = replyQueue(queue);
    this.#onReply = onReply;
  }

  /** Declares the queue (if missing) and consumes it on a channel of `model`. */
  async attach(model: ChannelModel): Promise<Channel> {
    const channel = await model.createChannel();
    channel.on("error", (error: Error) => {
      log("producer").debug("The reply channel failed: {cause}", { cause: error.message });
    });
    await channel.assertQueue(this.name, {
      durable: true,
      arguments: { "x-queue-type": "quorum", "x-expires": REPLY_QUEUE_EXPIRES_MS },
    });
    await channel.prefetch(1_000);
    await channel.consume(this.name, (message) => {
      if (message === null) {
        // The broker cancelled the consumer (the queue was deleted): start over, declaring it.
        model.close().catch(() => {});
        return;
      }
      const reply = parseReply(message);
      channel.ack(message);
      if (reply === undefined) return;
      if (reply.status !== "progress") {
        if (this.#answered.has(reply.taskId)) return;
        this.#answered.add(reply.taskId);
        if (this.#answered.size > 100_000) {
          this.#answered.delete(this.#answered.values().next().value!);
        }
      }
      this.#onReply(reply);
    });
    return channel;
  }
}

/**
 * Publishes a reply for task `taskId` to the reply queue `replyTo` (through the default exchange);
 * a result or death is persistent and resolves once the broker confirms it, a progress report is
 * transient and not waited for.
 */
export function publishReply(
  channel: ConfirmChannel,
  replyTo: string,
  taskId: string,
  type: typeof RESULT_TYPE | typeof PROGRESS_TYPE,
  body: Buffer,
): Promise<void> {
  const persistent = type === RESULT_TYPE;
  return new Promise((resolve, reject) => {
    try {
      channel.sendToQueue(replyTo, body, {
        persistent,
        correlationId: taskId,
        type,
        contentType: "application/json",
      }, (error) => error ? reject(error) : resolve());
      if (!persistent) resolve();
    } catch (error) {
      reject(error);
    }
  });
}
