/**
 * Publishing a dead letter again, as a copy of the message with the same properties: to the work
 * queue with its last life's headers dropped, or to the tail of `<queue>.dead` with its headers
 * kept. Each copy is confirmed by the broker, and one the broker returns (no such queue) fails.
 * @module
 */
import type { ConfirmChannel, GetMessage, Options } from "../../deps/amqplib.ts";
import type { Buffer } from "node:buffer";
import { isHeadersTooLarge } from "../../core/broker_errors.ts";
import { TareasError } from "../../core/errors.ts";
import { type DeadLetter, RESET_HEADERS } from "./letter.ts";

/**
 * Publishes copies of dead letters on one confirm channel: each confirmed, `mandatory`, and failed
 * when the broker returns it (no such queue).
 */
export class Republisher {
  readonly #channel: ConfirmChannel;
  #returned = false;

  /** Listens for the messages `channel` gets back from the broker. */
  constructor(channel: ConfirmChannel) {
    this.#channel = channel;
    channel.on("return", () => this.#returned = true);
  }

  /**
   * Publishes a copy of `message` with `headers` to queue `to` and resolves once the broker has
   * confirmed it.
   *
   * @throws {RefusedError} when the broker nacks it.
   * @throws {TareasError} when queue `to` does not exist, or the copy cannot be published.
   */
  async send(to: string, message: GetMessage, headers: Record<string, unknown>): Promise<void> {
    this.#returned = false;
    const properties = copyProperties(message);
    try {
      await confirmed(this.#channel, to, message.content, { ...properties, headers });
    } catch (error) {
      if (!(error instanceof HeadersTooLargeError)) throw error;
      // Headers another client could send but amqplib cannot encode (over 64 KiB): keep
      // the task and tareas' own headers rather than leave the message stuck.
      const kept = Object.fromEntries(
        Object.entries(headers).filter(([key]) => key.startsWith("x-tareas-")),
      );
      kept["x-tareas-note"] = "The sender's headers were dropped: too large to copy";
      await confirmed(this.#channel, to, message.content, { ...properties, headers: kept });
    }
    if (this.#returned) throw new TareasError(`Queue "${to}" does not exist: nothing was moved`);
  }
}

/** The headers of a requeued task: the sender's, without its last life's attempts and deaths. */
export function resetHeaders(headers: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(headers).filter(([key]) => !RESET_HEADERS.test(key)));
}

/**
 * The headers of a dead letter put back in place: all of them but the broker's per-hop delivery
 * count, plus its reason and time as tareas headers when only the broker recorded them (a broker
 * may not keep another publisher's `x-death`).
 */
export function keptHeaders(letter: DeadLetter): Record<string, unknown> {
  const headers = { ...letter.headers };
  delete headers["x-delivery-count"];
  if (headers["x-tareas-reason"] === undefined) headers["x-tareas-reason"] = letter.reason;
  if (headers["x-tareas-dead-at"] === undefined && letter.deadAt !== undefined) {
    headers["x-tareas-dead-at"] = letter.deadAt;
  }
  return headers;
}

/**
 * The properties of a message, to publish it again: all but `userId` (the broker checks it
 * against the publishing user) and the deprecated `clusterId`; always persistent.
 */
function copyProperties(message: GetMessage): Options.Publish {
  const p = message.properties;
  const options: Options.Publish = { persistent: true, mandatory: true };
  if (p.messageId !== undefined) options.messageId = p.messageId;
  if (p.contentType !== undefined) options.contentType = p.contentType;
  if (p.contentEncoding !== undefined) options.contentEncoding = p.contentEncoding;
  if (p.correlationId !== undefined) options.correlationId = p.correlationId;
  if (p.replyTo !== undefined) options.replyTo = p.replyTo;
  if (p.expiration !== undefined) options.expiration = p.expiration;
  if (p.timestamp !== undefined) options.timestamp = p.timestamp;
  if (p.type !== undefined) options.type = p.type;
  if (p.appId !== undefined) options.appId = p.appId;
  if (p.priority !== undefined) options.priority = p.priority;
  return options;
}

/** Publishes to a queue and resolves once the broker confirms it; rejects on a nack. */
function confirmed(
  channel: ConfirmChannel,
  queue: string,
  content: Buffer,
  options: Options.Publish,
): Promise<void> {
  return new Promise((resolve, reject) => {
    try {
      channel.publish("", queue, content, options, (error) => {
        if (error) reject(new RefusedError(`The broker refused the publish to "${queue}"`));
        else resolve();
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      reject(
        isHeadersTooLarge(error)
          ? new HeadersTooLargeError(message, { cause: error })
          : new TareasError(`Cannot publish to "${queue}": ${message}`, { cause: error }),
      );
    }
  });
}

/** The broker nacked a publish. */
export class RefusedError extends TareasError {
  override name = "RefusedError";
}

/** amqplib cannot encode a message's headers (over its 64 KiB buffer). */
class HeadersTooLargeError extends TareasError {
  override name = "HeadersTooLargeError";
}
