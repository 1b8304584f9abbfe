/**
 * The queue topology, declared in exactly one place: the work queue (quorum, with an explicit
 * delivery limit and at-least-once dead-lettering), its dead-letter queue and its events exchange.
 * The delays' ladder (`delays.ts`, shared by every work queue) is declared, and the work queue
 * bound to it, by whoever first delays a task of the queue.
 * @module
 */
import type { Channel, ChannelModel } from "../deps/amqplib.ts";
import {
  inequivalence,
  isClassicQueue,
  isInequivalent,
  isNotFound,
  withChannel,
} from "./broker_errors.ts";
import { ConfigError } from "./errors.ts";
import { eventsExchange } from "./events.ts";

/**
 * The work queue of the original scripts.
 *
 * @example
 * ```ts
 * await using worker = await createWorker({ queue: DEFAULT_QUEUE }); // "tareas_distribuidas"
 * ```
 */
export const DEFAULT_QUEUE = "tareas_distribuidas";

/**
 * How many times a delivery may end without an ack or reject (worker crash, lost connection)
 * before the broker dead-letters the task: at most `DELIVERY_LIMIT + 1` deliveries. Set explicitly
 * because RabbitMQ 3.10 has no default limit and 4.x defaults to 20.
 */
export const DELIVERY_LIMIT = 5;

/**
 * Name of the dead-letter queue of `queue`.
 *
 * @example
 * ```ts
 * deadQueue("images"); // "images.dead"
 * ```
 */
export function deadQueue(queue: string): string {
  return `${queue}.dead`;
}

/** Arguments of the work queue. Any difference from an existing queue is a configuration error. */
export function workQueueArguments(queue: string): Record<string, unknown> {
  return {
    "x-queue-type": "quorum",
    "x-delivery-limit": DELIVERY_LIMIT,
    "x-dead-letter-exchange": "",
    "x-dead-letter-routing-key": deadQueue(queue),
    "x-dead-letter-strategy": "at-least-once",
    "x-overflow": "reject-publish",
  };
}

/**
 * Declares the work queue, its dead-letter queue and its events exchange. Idempotent. No binding:
 * on RabbitMQ 3.10 a bind is a transaction across every node, which a hung node holds until
 * net_ticktime declares it down (measured: 67 s, while declares and consumes answered at once), and
 * a worker reconnecting away from that node must not wait for it.
 *
 * When the work queue exists as a classic queue (the original scripts declare it so), the error
 * says so and names `deno task migrate`; given `model`, it also counts the messages waiting in it,
 * on channels of its own (the failed declare closes `channel`).
 *
 * @throws {ConfigError} when a queue exists with other arguments (the channel is then closed).
 */
export async function declareTopology(
  channel: Channel,
  queue: string,
  model?: Pick<ChannelModel, "createChannel">,
): Promise<void> {
  try {
    await channel.assertQueue(queue, { durable: true, arguments: workQueueArguments(queue) });
  } catch (error) {
    throw await workQueueError(error, queue, model);
  }
  const dead = deadQueue(queue);
  await declare(
    dead,
    () => channel.assertQueue(dead, { durable: true, arguments: { "x-queue-type": "quorum" } }),
  );
  await channel.assertExchange(eventsExchange(queue), "topic", { durable: true });
}

/** What the broker reveals about a would-be work queue, from passive and plain declares. */
export interface QueueInspection {
  /**
   * `missing`; `tareas` when declaring it with {@linkcode workQueueArguments} succeeds; `classic`
   * for a classic queue; `other` for any other type or arguments (see `detail`).
   */
  kind: "missing" | "tareas" | "classic" | "other";
  /** Messages ready in it, 0 when missing. */
  messageCount: number;
  /** Consumers attached to it. */
  consumerCount: number;
  /** For `other`: the first difference, in the broker's words. */
  detail?: string;
}

/**
 * Finds out whether `queue` is missing, tareas' work queue, a classic queue or something else,
 * each declare on a channel of its own (a refused declare closes its channel). A missing queue is
 * not created.
 *
 * @example
 * ```ts
 * const { kind, messageCount } = await inspectWorkQueue(model, "tareas_distribuidas");
 * ```
 */
export async function inspectWorkQueue(
  model: Pick<ChannelModel, "createChannel">,
  queue: string,
): Promise<QueueInspection> {
  const counts = await withChannel(model, (channel) => channel.checkQueue(queue))
    .catch((error: unknown) => isNotFound(error) ? undefined : Promise.reject(error));
  if (counts === undefined) return { kind: "missing", messageCount: 0, consumerCount: 0 };
  const { messageCount, consumerCount } = counts;
  const declared = await refusal(
    model,
    (channel) =>
      channel.assertQueue(queue, { durable: true, arguments: workQueueArguments(queue) }),
  );
  if (declared === undefined) return { kind: "tareas", messageCount, consumerCount };
  if (!isInequivalent(declared)) throw declared;
  // 3.10 names the first differing argument of its own list, not the type: ask about the type.
  const typed = isClassicQueue(declared) ? declared : await refusal(
    model,
    (channel) =>
      channel.assertQueue(queue, { durable: true, arguments: { "x-queue-type": "quorum" } }),
  );
  if (isClassicQueue(typed)) return { kind: "classic", messageCount, consumerCount };
  const detail = difference(declared);
  return { kind: "other", messageCount, consumerCount, ...(detail ? { detail } : {}) };
}

/** The error with which the broker refuses `fn` on a channel of its own; undefined if it does not. */
function refusal(
  model: Pick<ChannelModel, "createChannel">,
  fn: (channel: Channel) => Promise<unknown>,
): Promise<unknown> {
  return withChannel(model, fn).then(
    () => undefined,
    (error: unknown) => error ?? new Error("Refused"),
  );
}

/** The command that turns `queue` into tareas' work queue, keeping its messages. */
export function migrateCommand(queue: string): string {
  const quoted = /^[\w.:@%+=,/-]+$/.test(queue) ? queue : `'${queue.replaceAll("'", `'\\''`)}'`;
  return `deno task migrate --queue ${quoted}`;
}

async function workQueueError(
  error: unknown,
  queue: string,
  model: Pick<ChannelModel, "createChannel"> | undefined,
): Promise<unknown> {
  if (!isInequivalent(error)) return error;
  const found = model ? await inspectWorkQueue(model, queue).catch(() => undefined) : undefined;
  if (found?.kind === "classic" || (!found && isClassicQueue(error))) {
    const waiting = found
      ? ` holding ${found.messageCount} message${found.messageCount === 1 ? "" : "s"}`
      : "";
    return new ConfigError(
      `Cannot declare queue "${queue}": it is a classic queue${waiting} and tareas needs a ` +
        `quorum queue; turn it into one, keeping its messages, with: ${migrateCommand(queue)}`,
      { cause: error },
    );
  }
  return inequivalentError(queue, error) ?? error;
}

async function declare(queue: string, assert: () => Promise<unknown>): Promise<void> {
  try {
    await assert();
  } catch (error) {
    throw inequivalentError(queue, error) ?? error;
  }
}

/** The first difference of an inequivalent declare, in words; undefined for any other error. */
function difference(error: unknown): string | undefined {
  const found = inequivalence(error);
  return found && `${found.argument} is ${found.current}, tareas needs ${found.wanted}`;
}

function inequivalentError(queue: string, error: unknown): ConfigError | undefined {
  const detail = difference(error);
  if (detail === undefined) return undefined;
  return new ConfigError(
    `Cannot declare queue "${queue}": it exists with other arguments (${detail}); ` +
      "delete it or choose another --queue",
    { cause: error },
  );
}
