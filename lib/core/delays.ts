/**
 * Delays without a broker plugin and without a process that must stay up: a fixed ladder of
 * quorum queues, one per power of two of {@linkcode DELAY_UNIT_MS}, shared by every work queue of
 * the virtual host. A message waits in the queues of the bits of its delay, highest first: each
 * queue has one message TTL (2^k units), so its messages expire in the order they came, and each
 * dead-letters (at least once) into the next level's exchange. The routing key carries the bits;
 * each level's exchange sends a message to its queue when its bit is 1 and on to the next level
 * when it is 0. The last level hands it to `tareas.delay.deliver`, a headers exchange that routes
 * it to the work queue its `x-tareas-queue` header names. Any delay up to
 * {@linkcode MAX_DELAY_MS} (38 days), any mix of delays, 25 queues in all. A message whose work
 * queue is gone when its time comes lands in `tareas.delay.unrouted` (kept a week, the last
 * 100,000), rather than circling in the ladder for ever.
 *
 * A delayed message is in a replicated queue from the moment its publish is confirmed, so a
 * broker restart or the loss of a cluster node loses none; it is never early (delays are rounded
 * up to the unit), and each queue it passes through adds a few milliseconds (measured on 3.10:
 * 3–10 ms a hop, at most 25 hops).
 *
 * The ladder of NServiceBus's RabbitMQ transport works the same way, with levels of seconds.
 * @module
 */
import type { Buffer } from "node:buffer";
import type { Channel, ConfirmChannel, Options } from "../deps/amqplib.ts";
import { UsageError } from "./errors.ts";

/** The smallest step of a delay, in milliseconds: delays are rounded up to it. */
export const DELAY_UNIT_MS = 100;

/** Queues of the ladder: level k holds a message 2^k units. */
export const DELAY_LEVELS = 25;

/** The longest delay: every level once (2^25 - 1 units, about 38.8 days). */
export const MAX_DELAY_MS = (2 ** DELAY_LEVELS - 1) * DELAY_UNIT_MS;

/** The headers exchange the last level hands messages to, which routes them to their queue. */
export const DELIVER_EXCHANGE = "tareas.delay.deliver";

/** The queue (and its fanout exchange) of delayed messages whose work queue is gone. */
export const UNROUTED = "tareas.delay.unrouted";

/** The header naming the work queue a delayed message goes to. */
export const DELAY_QUEUE_HEADER = "x-tareas-queue";

/** The header holding when a delayed task may run (ISO 8601), for whoever reads it meanwhile. */
export const RUN_AT_HEADER = "x-tareas-run-at";

/** The exchange, and the queue, of level `level` of the ladder. */
export function delayLevel(level: number): string {
  return `tareas.delay.${level}`;
}

/**
 * Where to publish a message to delay it: the exchange of its delay's highest 1 bit (level 0's
 * for no delay), and its routing key.
 */
export interface DelayRoute {
  /** The exchange to publish to. */
  exchange: string;
  /** The bits of the delay in units, highest level first, one word each: `0.0.….1.0.1`. */
  routingKey: string;
  /** The delay as it will be: the one asked for rounded up to {@linkcode DELAY_UNIT_MS}. */
  delayMs: number;
}

/**
 * The route of a message delayed by `delayMs` (rounded up to the unit).
 *
 * @throws {UsageError} when the delay is not a number from 0 to {@linkcode MAX_DELAY_MS}.
 * @example
 * ```ts
 * delayRoute(1_000); // { exchange: "tareas.delay.3", routingKey: "0.….0.1.0.1.0", delayMs: 1000 }
 * ```
 */
export function delayRoute(delayMs: number): DelayRoute {
  if (!Number.isFinite(delayMs) || delayMs < 0 || delayMs > MAX_DELAY_MS) {
    throw new UsageError(
      `Invalid delay ${delayMs}: expected milliseconds from 0 to ${MAX_DELAY_MS} (about 38 days)`,
    );
  }
  const units = Math.ceil(delayMs / DELAY_UNIT_MS);
  const bits = units.toString(2).padStart(DELAY_LEVELS, "0");
  // It enters at its highest 1 bit: the levels above would only pass it on, and each
  // exchange-to-exchange hop costs the broker time on every publish.
  return {
    exchange: delayLevel(units.toString(2).length - 1),
    routingKey: [...bits].join("."),
    delayMs: units * DELAY_UNIT_MS,
  };
}

/** The binding key of level `level`'s exchange for messages whose bit at that level is `bit`. */
export function levelPattern(level: number, bit: 0 | 1): string {
  const words = new Array<string>(DELAY_LEVELS).fill("*");
  words[DELAY_LEVELS - 1 - level] = String(bit);
  return words.join(".");
}

/**
 * Declares the ladder (idempotent): for each level an exchange and a quorum queue holding
 * messages 2^level units, the bindings that pass a message down, and the deliver exchange, which
 * it binds work queue `queue` to. Call it before delaying a task of `queue`.
 */
export async function declareDelays(channel: Channel, queue: string): Promise<void> {
  await bindDelivery(channel, queue);
  for (let level = 0; level < DELAY_LEVELS; level++) {
    const name = delayLevel(level);
    const next = level === 0 ? DELIVER_EXCHANGE : delayLevel(level - 1);
    await channel.assertExchange(name, "topic", { durable: true });
    await channel.assertQueue(name, {
      durable: true,
      arguments: {
        "x-queue-type": "quorum",
        "x-message-ttl": 2 ** level * DELAY_UNIT_MS,
        "x-dead-letter-exchange": next,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
      },
    });
    await channel.bindQueue(name, name, levelPattern(level, 1));
    await channel.bindExchange(next, name, levelPattern(level, 0));
  }
}

/** Routes the messages the ladder delivers for `queue` to it (idempotent). */
export async function bindDelivery(channel: Channel, queue: string): Promise<void> {
  await declareDeliver(channel);
  await channel.bindQueue(queue, DELIVER_EXCHANGE, "", {
    // "all" ignores the arguments whose name starts with x-: it would match every message.
    "x-match": "all-with-x",
    [DELAY_QUEUE_HEADER]: queue,
  });
}

/** The deliver exchange, and where it puts what it cannot route. */
async function declareDeliver(channel: Channel): Promise<void> {
  await channel.assertExchange(UNROUTED, "fanout", { durable: true });
  await channel.assertQueue(UNROUTED, {
    durable: true,
    arguments: {
      "x-queue-type": "quorum",
      "x-message-ttl": 7 * 86_400_000,
      "x-max-length": 100_000,
    },
  });
  await channel.bindQueue(UNROUTED, UNROUTED, "");
  await channel.assertExchange(DELIVER_EXCHANGE, "headers", {
    durable: true,
    arguments: { "alternate-exchange": UNROUTED },
  });
}

/**
 * Publishes `content` delayed by `delayMs` to work queue `queue` through the ladder, with a
 * broker confirm; `headers` travel with it, plus {@linkcode DELAY_QUEUE_HEADER} and
 * {@linkcode RUN_AT_HEADER}. Declare the ladder first ({@linkcode declareDelays}).
 *
 * @throws when the broker refuses the publish or the channel closes first.
 */
export function publishDelayed(
  channel: ConfirmChannel,
  queue: string,
  delayMs: number,
  content: Buffer,
  properties: Options.Publish & { headers?: Record<string, unknown> },
): Promise<void> {
  const route = delayRoute(delayMs);
  const headers = {
    ...properties.headers,
    [DELAY_QUEUE_HEADER]: queue,
    [RUN_AT_HEADER]: new Date(Date.now() + delayMs).toISOString(),
  };
  return new Promise((resolve, reject) => {
    try {
      channel.publish(
        route.exchange,
        route.routingKey,
        content,
        { ...properties, headers },
        (error) => error ? reject(error) : resolve(),
      );
    } catch (error) {
      reject(error);
    }
  });
}
