/**
 * What RabbitMQ's refusals look like through amqplib, in one place. amqplib reports a channel or
 * connection closed by the broker as an `Error` with the AMQP reply code in `code` and in its
 * message (`Operation failed: QueueDeclare; 404 (NOT-FOUND) with message "NOT_FOUND - no queue
 * 'q' ..."`); a refusal during the handshake has the code only in its message, and amqplib's own
 * failures (a nacked publish, a closed channel, headers too large to encode) only words. Every
 * module asks here instead of matching text itself.
 *
 * Also the dance that goes with them: a declare the broker refuses closes its channel, so a
 * question that may be refused is asked on a channel of its own ({@linkcode withChannel},
 * {@linkcode withConfirmChannel}).
 * @module
 */
import type { Channel, ChannelModel, ConfirmChannel } from "../deps/amqplib.ts";

function text(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The AMQP reply code the broker closed a channel or connection with (404, 406, 403, ...):
 * amqplib's `code`, else the one its message quotes; undefined for any other error.
 *
 * @example
 * ```ts
 * await channel.checkQueue("missing").catch((error) => replyCode(error)); // 404
 * ```
 */
export function replyCode(error: unknown): number | undefined {
  const code = typeof error === "object" && error !== null
    ? (error as { code?: unknown }).code
    : undefined;
  if (typeof code === "number") return code;
  const quoted = /\b(\d{3}) \([A-Z-]+\) with message "/.exec(text(error));
  return quoted ? Number(quoted[1]) : undefined;
}

/** 404 NOT_FOUND: the queue or exchange does not exist. */
export function isNotFound(error: unknown): boolean {
  return replyCode(error) === 404;
}

/** 406 PRECONDITION_FAILED on a declare: the queue exists with other arguments. */
export function isInequivalent(error: unknown): boolean {
  return isPreconditionFailed(error) && /inequivalent arg/.test(text(error));
}

/** 406 PRECONDITION_FAILED, whatever the cause. */
export function isPreconditionFailed(error: unknown): boolean {
  return replyCode(error) === 406;
}

/** 403 ACCESS_REFUSED: the credentials, or the user's permissions on a resource. */
export function isAccessRefused(error: unknown): boolean {
  return replyCode(error) === 403;
}

/**
 * 530 NOT_ALLOWED, or a connection.open answered with a close (amqplib then names no code): the
 * virtual host is missing or the user may not use it.
 */
export function isNotAllowed(error: unknown): boolean {
  return replyCode(error) === 530 ||
    /^Expected ConnectionOpenOk; got <ConnectionClose/.test(text(error));
}

/** 405 RESOURCE_LOCKED: an exclusive queue held by another connection. */
export function isResourceLocked(error: unknown): boolean {
  return replyCode(error) === 405;
}

/** The channel or its connection closed before the operation could finish. */
export function isChannelClosed(error: unknown): boolean {
  return /channel (closed|closing|ended)|connection closed/i.test(text(error));
}

/** The broker refused a publish (`basic.nack`). */
export function isNacked(error: unknown): boolean {
  return /nacked/.test(text(error)); // amqplib: "message nacked"
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
  if (!isPreconditionFailed(error)) return undefined;
  const limit = /message size \d+ is larger than configured max size (\d+)/.exec(text(error));
  return limit ? Number(limit[1]) : undefined;
}

/**
 * The first argument by which a declare differs from the queue that exists, in the broker's
 * words (`wanted` without the broker's "the value", `current` as it says it:
 * `"none"`, `"'10'"`, `"the value 'classic' of type 'longstr'"`).
 */
export interface Inequivalence {
  /** The argument, e.g. `x-delivery-limit`. */
  argument: string;
  /** What the declare asked for. */
  wanted: string;
  /** What the queue has. */
  current: string;
}

/**
 * What made the broker refuse a declare with 406 `inequivalent arg`; undefined for any other
 * error.
 *
 * @example
 * ```ts
 * const found = inequivalence(error); // { argument: "x-delivery-limit", wanted: "'5'", current: "'10'" }
 * ```
 */
export function inequivalence(error: unknown): Inequivalence | undefined {
  if (!isPreconditionFailed(error)) return undefined;
  const arg = /inequivalent arg '([^']+)'.*?received (?:the value )?(.*?) but current is ([^"]*)/
    .exec(text(error));
  return arg ? { argument: arg[1]!, wanted: arg[2]!, current: arg[3]! } : undefined;
}

/**
 * A declare of a quorum queue refused because a classic queue of that name exists. RabbitMQ 3.10
 * says "current is none" for a classic queue declared without arguments; other versions may name
 * the type.
 */
export function isClassicQueue(error: unknown): boolean {
  const found = inequivalence(error);
  return found?.argument === "x-queue-type" &&
    /^(?:none|the value 'classic')/.test(found.current);
}

/**
 * The broker's own words of a refusal, without amqplib's frame and the reply's name: `no queue
 * 'q' in vhost '/'` for a 404; undefined for an error that quotes none.
 */
export function replyText(error: unknown): string | undefined {
  return / with message "(?:[A-Z_]+ - )?(.*)"/.exec(text(error))?.[1];
}

/** Whose access to what the broker refused (403 ACCESS_REFUSED on a resource). */
export interface AccessRefusal {
  /** What kind of resource. */
  kind: "queue" | "exchange";
  /** Its name. */
  name: string;
  /** Its virtual host. */
  vhost: string;
  /** The user refused. */
  user: string;
}

/**
 * The resource and user of a 403 ACCESS_REFUSED on a queue or exchange; undefined for any other
 * error (a refused login among them).
 */
export function accessRefusal(error: unknown): AccessRefusal | undefined {
  if (!isAccessRefused(error)) return undefined;
  const found = /access to (queue|exchange) '([^']*)' in vhost '([^']*)' refused for user '([^']*)'/
    .exec(text(error));
  if (found === null) return undefined;
  const [, kind, name, vhost, user] = found;
  return { kind: kind as AccessRefusal["kind"], name: name!, vhost: vhost!, user: user! };
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

/**
 * {@linkcode withChannel} with a confirm channel, for publishes the broker must confirm.
 *
 * @example
 * ```ts
 * await withConfirmChannel(model, async (channel) => {
 *   channel.sendToQueue(queue, body, { persistent: true });
 *   await channel.waitForConfirms();
 * });
 * ```
 */
export async function withConfirmChannel<T>(
  model: Pick<ChannelModel, "createConfirmChannel">,
  fn: (channel: ConfirmChannel) => Promise<T>,
): Promise<T> {
  const channel = await model.createConfirmChannel();
  channel.on("error", () => {});
  try {
    return await fn(channel);
  } finally {
    await channel.close().catch(() => {});
  }
}
