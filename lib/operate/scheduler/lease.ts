/**
 * The lease: a quorum queue `<queue>.scheduler` with a single active consumer, holding one
 * message, the token. The scheduler whose consumer the broker made active receives the token and
 * keeps it unacked while it leads; when its connection dies, the broker returns the token to the
 * queue and delivers it to the next consumer. The token's body is the record of what was fired:
 * for each schedule id, the time up to which every tick has been dealt with. A leader replaces it
 * in the same transaction as the tasks it fires (`session.ts`, `tx.ts`), so the record and the
 * tasks change together.
 *
 * The body (`record.ts`) comes from the broker: `decodeRecord` is its one door.
 * @module
 */
import type { Channel } from "../../deps/amqplib.ts";
import { inequivalence, isInequivalent } from "../../core/broker_errors.ts";
import { ConfigError } from "../../core/errors.ts";

/**
 * The lease queue of a work queue.
 *
 * @example
 * ```ts
 * leaseQueue("reports"); // "reports.scheduler"
 * ```
 */
export function leaseQueue(queue: string): string {
  return `${queue}.scheduler`;
}

/**
 * How many times the token may be returned to the queue (a leader's connection dying) before the
 * broker drops it. Set because RabbitMQ 4.x limits a quorum queue's redeliveries to 20 by default
 * (3.10 has no limit), and each leader replaces the token with a fresh message (whose count starts
 * at 0) as soon as it receives it: only a million leaders in a row dying before their first commit
 * would reach it.
 */
export const TOKEN_DELIVERY_LIMIT = 1_000_000;

/** Arguments of the lease queue. Any difference from an existing queue is a configuration error. */
export function leaseQueueArguments(): Record<string, unknown> {
  return {
    "x-queue-type": "quorum",
    "x-single-active-consumer": true,
    "x-delivery-limit": TOKEN_DELIVERY_LIMIT,
  };
}

/**
 * Declares the lease queue of `queue`. Idempotent.
 *
 * @throws {ConfigError} when it exists with other arguments (the channel is then closed).
 */
export async function declareLease(channel: Channel, queue: string): Promise<void> {
  const name = leaseQueue(queue);
  try {
    await channel.assertQueue(name, { durable: true, arguments: leaseQueueArguments() });
  } catch (error) {
    if (!isInequivalent(error)) throw error;
    const found = inequivalence(error);
    const detail = found
      ? ` (${found.argument} is ${found.current}, tareas needs ${found.wanted})`
      : "";
    throw new ConfigError(
      `Cannot declare the scheduler's lease queue "${name}": it exists with other arguments` +
        `${detail}; delete it (the schedulers make it again)`,
      { cause: error },
    );
  }
}

/**
 * Whether a scheduler about to consume must publish the first token: the queue holds no message
 * and nobody consumes it. A token is either ready in the queue or held, unacked, by a consumer,
 * so with neither there is none (a new queue, or one whose token was lost). Two schedulers that
 * start together may both publish one: the leader merges them at its first commit.
 */
export function needsToken(counts: { messageCount: number; consumerCount: number }): boolean {
  return counts.messageCount === 0 && counts.consumerCount === 0;
}

/** The properties of a token message. */
export const TOKEN_PROPERTIES = {
  persistent: true,
  contentType: "application/json",
  type: "tareas.scheduler.record",
} as const;

/**
 * The id of a tick's task: `<schedule id>@<tick, ISO 8601>`.
 *
 * @example
 * ```ts
 * tickTaskId("cleanup", Date.parse("2026-01-01T00:05:00Z")); // "cleanup@2026-01-01T00:05:00.000Z"
 * ```
 */
export function tickTaskId(scheduleId: string, at: number): string {
  return `${scheduleId}@${new Date(at).toISOString()}`;
}
