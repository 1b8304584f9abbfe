/**
 * What RabbitMQ's refusals look like through amqplib, in one place: amqplib reports a channel or
 * connection closed by the broker as an `Error` whose message holds the reply code and text
 * (`Channel closed by server: 404 (NOT-FOUND) with message "NOT_FOUND - no queue 'q' ..."`), and
 * a few failures of its own in words. Every module asks here instead of matching text itself.
 *
 * Also the dance that goes with them: a declare the broker refuses closes its channel, so a
 * question that may be refused is asked on a channel of its own ({@linkcode withChannel}).
 * @module
 */
import type { Channel, ChannelModel } from "../deps/amqplib.ts";

function text(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** 404 NOT_FOUND: the queue or exchange does not exist. */
export function isNotFound(error: unknown): boolean {
  return /NOT[-_]FOUND|\b404\b/.test(text(error));
}

/** 406 PRECONDITION_FAILED on a declare: the queue exists with other arguments. */
export function isInequivalent(error: unknown): boolean {
  return /inequivalent arg/.test(text(error));
}

/** 406 PRECONDITION_FAILED, whatever the cause. */
export function isPreconditionFailed(error: unknown): boolean {
  return /PRECONDITION[-_]FAILED|\b406\b/.test(text(error));
}

/** 403 ACCESS_REFUSED: the credentials, or the user's permissions on a resource. */
export function isAccessRefused(error: unknown): boolean {
  return /ACCESS[-_]REFUSED|\b403 \(/.test(text(error));
}

/**
 * 530 NOT_ALLOWED, or a connection.open answered with a close: the virtual host is missing or
 * the user may not use it.
 */
export function isNotAllowed(error: unknown): boolean {
  return /NOT[-_]ALLOWED|\b530 \(|Expected ConnectionOpenOk; got <ConnectionClose/.test(
    text(error),
  );
}

/** 405 RESOURCE_LOCKED: an exclusive queue held by another connection. */
export function isResourceLocked(error: unknown): boolean {
  return /RESOURCE[-_]LOCKED|\b405\b/.test(text(error));
}

/** The channel or its connection closed before the operation could finish. */
export function isChannelClosed(error: unknown): boolean {
  return /channel (closed|closing|ended)|connection closed/i.test(text(error));
}

/** The broker refused a publish (`basic.nack`). */
export function isNacked(error: unknown): boolean {
  return /nacked/.test(text(error));
}

/** amqplib could not encode a message's properties (headers over its 64 KiB buffer). */
export function isHeadersTooLarge(error: unknown): boolean {
  return /exceeds the \d+ byte encoding buffer/.test(text(error));
}

/**
 * The broker's `max_message_size` when it closed the channel over a message larger than that;
 * undefined for any other error.
 */
export function maxMessageSize(error: unknown): number | undefined {
  const limit = /message size \d+ is larger than configured max size (\d+)/.exec(text(error));
  return limit ? Number(limit[1]) : undefined;
}

/**
 * Runs `fn` on a channel of its own, closed afterwards whatever happens. A refusal closes the
 * channel: `fn`'s promise rejects with it and the channel's error event is swallowed.
 *
 * @example
 * ```ts
 * const exists = await withChannel(model, (channel) => channel.checkQueue(queue))
 *   .then(() => true, (error) => isNotFound(error) ? false : Promise.reject(error));
 * ```
 */
export async function withChannel<T>(
  model: Pick<ChannelModel, "createChannel">,
  fn: (channel: Channel) => Promise<T>,
): Promise<T> {
  const channel = await model.createChannel();
  channel.on("error", () => {});
  try {
    return await fn(channel);
  } finally {
    await channel.close().catch(() => {});
  }
}
