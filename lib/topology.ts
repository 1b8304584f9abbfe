/**
 * The queue topology, declared in exactly one place: the work queue (quorum, with an explicit
 * delivery limit and at-least-once dead-lettering), its dead-letter queue, the retry delay queues
 * and the events exchange.
 * @module
 */
import type { Channel } from "amqplib";
import { ConfigError } from "./errors.ts";
import { eventsExchange } from "./events.ts";

/** The work queue of the original scripts. */
export const DEFAULT_QUEUE = "tareas_distribuidas";

/**
 * How many times a delivery may end without an ack or reject (worker crash, lost connection)
 * before the broker dead-letters the task: at most `DELIVERY_LIMIT + 1` deliveries. Set explicitly
 * because RabbitMQ 3.10 has no default limit and 4.x defaults to 20.
 */
export const DELIVERY_LIMIT = 5;

/** Name of the dead-letter queue of `queue`. */
export function deadQueue(queue: string): string {
  return `${queue}.dead`;
}

/** Name of the queue that holds retries of `queue` for `delayMs` before returning them. */
export function delayQueue(queue: string, delayMs: number): string {
  return `${queue}.delay.${delayMs}`;
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
 * Declares the work queue, its dead-letter queue and its events exchange. Idempotent.
 *
 * @throws {ConfigError} when a queue exists with other arguments (the channel is then closed).
 */
export async function declareTopology(channel: Channel, queue: string): Promise<void> {
  await declare(
    queue,
    () => channel.assertQueue(queue, { durable: true, arguments: workQueueArguments(queue) }),
  );
  const dead = deadQueue(queue);
  await declare(
    dead,
    () => channel.assertQueue(dead, { durable: true, arguments: { "x-queue-type": "quorum" } }),
  );
  await channel.assertExchange(eventsExchange(queue), "topic", { durable: true });
}

/**
 * Declares the delay queue that holds failed tasks of `queue` for `delayMs`, then dead-letters
 * them back to `queue`. Idempotent.
 */
export async function declareDelayQueue(
  channel: Channel,
  queue: string,
  delayMs: number,
): Promise<string> {
  const name = delayQueue(queue, delayMs);
  await declare(name, () =>
    channel.assertQueue(name, {
      durable: true,
      arguments: {
        "x-queue-type": "quorum",
        "x-message-ttl": delayMs,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": queue,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
      },
    }));
  return name;
}

async function declare(queue: string, assert: () => Promise<unknown>): Promise<void> {
  try {
    await assert();
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    const arg = /inequivalent arg '([^']+)'.*?received (?:the value )?(.*?) but current is ([^"]*)/
      .exec(text);
    if (arg) {
      throw new ConfigError(
        `Cannot declare queue "${queue}": it exists with other arguments ` +
          `(${arg[1]} is ${arg[3]}, tareas needs ${arg[2]}); delete it or choose another --queue`,
        { cause: error },
      );
    }
    throw error;
  }
}
